"""A fake OpenAI Chat Completions upstream for Rosetta's gateway tests.

Why it exists: the gateway translates Responses API calls into Chat Completions
calls. Its tests need an upstream that (1) answers with the exact bytes real
servers send, including vendor quirks, (2) delivers them in awkward pieces so
SSE parsing is tested against arbitrary chunk boundaries, (3) records exactly
what the gateway sent, and (4) rejects malformed conversations the way OpenAI
does, so a translation bug surfaces as the same 400 it would cause in
production instead of passing silently.

Typical use (the "fake upstream" section of ``tests/fixtures/chat/README.md``
lists every model)::

    fake = create_fake_chat(api_key="sk-test")
    with serve(fake) as base_url:
        ...  # point the gateway's upstream at f"{base_url}/v1", model "fake-tool_call"
    assert fake.requests[0].body["messages"][0]["role"] == "user"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"

The reply is chosen by the upstream ``model`` field: ``fake-<case>`` replays
``tests/fixtures/chat/<case>.stream.sse`` (``"stream": true``) or
``<case>.response.json``; a few scripted models (``fake-agent``,
``fake-echo``, ``fake-error-*``, ``fake-slow``, ``fake-hang-midstream``)
cover loops, errors, timeouts and cancellation. Pass ``scenarios`` to add or
override models.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ._common import (
    FakeUpstream,
    RecordedRequest,
    Reply,
    Scenario,
    _fake_arguments,
    _split,
    _token,
    json_reply,
    sse_reply,
)
from ._common import ReplyResponse as _ReplyResponse

__all__ = [
    "FIXTURES_DIR",
    "FakeChat",
    "RecordedRequest",
    "Reply",
    "Scenario",
    "create_fake_chat",
    "fixture_bytes",
    "fixture_cases",
    "json_reply",
    "openai_error_body",
    "sse_reply",
]

FIXTURES_DIR: Final = Path(__file__).resolve().parent.parent / "fixtures" / "chat"

_SSE: Final = "text/event-stream; charset=utf-8"
_JSON: Final = "application/json"
_FINGERPRINT: Final = "fp_fake000000"

# Vendor dialect of each non-OpenAI fixture case, for realistic response headers.
_CASE_STYLE: Final[Mapping[str, str]] = {
    "reasoning_vllm": "vllm",
    "reasoning_llamacpp": "llamacpp",
    "mistral_whole_call": "mistral",
}

_NOT_JSON_MESSAGE: Final = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
_NO_KEY_MESSAGE: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
_ORPHAN_TOOL_MESSAGE: Final = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
    "'tool_calls'."
)
_UNANSWERED_CALLS_MESSAGE: Final = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
    "'tool_call_id'. The following tool_call_ids did not have response messages: {ids}"
)


# --------------------------------------------------------------------------------------------- data


def fixture_bytes(name: str, fixtures_dir: Path = FIXTURES_DIR) -> bytes:
    """Exact bytes of one fixture file, e.g. ``fixture_bytes("text.stream.sse")``."""
    return (fixtures_dir / name).read_bytes()


def fixture_cases(fixtures_dir: Path = FIXTURES_DIR) -> list[str]:
    """Names of all replayable cases (those with a ``.stream.sse`` or ``.response.json``)."""
    cases = {
        p.name.removesuffix(".stream.sse").removesuffix(".response.json")
        for p in fixtures_dir.iterdir()
        if p.name.endswith((".stream.sse", ".response.json"))
    }
    return sorted(cases)


def openai_error_body(message: str, *, type: str, param: str | None = None, code: str | None = None) -> bytes:
    """An error body byte-compatible with OpenAI's: ``{"error": {...}}``, 4-space indent, final newline."""
    error = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return (json.dumps(error, indent=4, ensure_ascii=False) + "\n").encode()


# --------------------------------------------------------------------------------------------- helpers


def _text_of(content: Any) -> str:
    """Plain text of a Chat message ``content`` (string or list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _json_kind(value: Any) -> str:
    """How OpenAI names a JSON value's type in validation messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else "an array"


def _approx_tokens(body: Mapping[str, Any]) -> int:
    """A stable, plausible prompt token count (exact values do not matter to the gateway)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 1
    words = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return words + 4 * len(messages) + 3


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    """An OpenAI-shaped usage object with zeroed detail counters."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _first_function_tool(tools: Any) -> tuple[str, Any] | None:
    """Name and JSON-schema parameters of the first ``type: function`` tool, if any."""
    if not isinstance(tools, list):
        return None
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"], function.get("parameters")
    return None


class _OpenAIStream:
    """Builds OpenAI-framed SSE bytes for generated replies, mirroring the ``text`` fixture.

    ``"usage": null`` on each chunk and the trailing ``choices: []`` usage chunk
    appear only when the request asked for them, as on the real API.
    """

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        self._include_usage = include_usage
        self._frames: list[str] = []

    def chunk(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> None:
        obj: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            obj["usage"] = None
        self._frames.append(_frame(obj))

    def finish(self, usage: Mapping[str, Any]) -> bytes:
        if self._include_usage:
            self._frames.append(_frame({**self._head, "choices": [], "usage": usage}))
        self._frames.append("data: [DONE]\n\n")
        return "".join(self._frames).encode()


def _frame(obj: Any) -> str:
    return "data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n\n"


# --------------------------------------------------------------------------------------------- the fake


class FakeChat(FakeUpstream):
    """The fake upstream: an ASGI app plus everything a test wants to inspect.

    Attributes tests read: ``requests`` (list of :class:`RecordedRequest`, in
    arrival order), ``disconnects`` (replies abandoned by the client), and
    ``scenarios`` (model name -> :data:`Scenario`, mutable between requests).
    The object itself is the ASGI app (``serve(fake)``); ``fake.app`` is the
    underlying Starlette instance.
    """

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None = None,
        *,
        api_key: str | None = None,
        chunk_size: int | tuple[int, int] = (1, 40),
        write_delay: float = 0.0,
        slow_seconds: float = 30.0,
        seed: int = 0,
        validate: bool = True,
        fixtures_dir: Path = FIXTURES_DIR,
    ) -> None:
        super().__init__(
            scenarios,
            api_key=api_key,
            chunk_size=chunk_size,
            write_delay=write_delay,
            slow_seconds=slow_seconds,
            seed=seed,
            validate=validate,
            fixtures_dir=fixtures_dir,
        )

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/chat/completions", self._completions, methods=["POST"]),
            Route("/chat/completions", self._completions, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/models", self._models, methods=["GET"]),
            Route(
                "/{path:path}",
                self._invalid_url,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ]

    # ----------------------------------------------------------------- routes

    async def _completions(self, request: Request) -> Response:
        record = await self._record(request)
        return _ReplyResponse(self, record, self._decide(record))

    async def _models(self, request: Request) -> Response:
        record = await self._record(request)
        reply = self._check_auth(record)
        if reply is None:
            data = [
                {"id": name, "object": "model", "created": 1700000000, "owned_by": "rosetta-fake"}
                for name in sorted(self.scenarios)
            ]
            reply = json_reply({"object": "list", "data": data}, headers=self._openai_headers(record))
        return _ReplyResponse(self, record, reply)

    async def _invalid_url(self, request: Request) -> Response:
        record = await self._record(request)
        message = f"Invalid URL ({request.method} {request.url.path})"
        body = openai_error_body(message, type="invalid_request_error")
        return _ReplyResponse(self, record, json_reply(body, 404, headers=self._openai_headers(record)))

    # ----------------------------------------------------------------- policy

    def _decide(self, record: RecordedRequest) -> Reply:
        """Validate like OpenAI would, then pick the scenario named by ``model``."""
        auth = self._check_auth(record)
        if auth is not None:
            return auth
        body = record.body
        if not isinstance(body, dict):
            return self._error(record, 400, _NOT_JSON_MESSAGE)
        if self.validate:
            invalid = self._check_body(record, body)
            if invalid is not None:
                return invalid
        model = body.get("model")
        scenario = self.scenarios.get(model) if isinstance(model, str) else None
        if scenario is None:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return self._error(record, 404, message, code="model_not_found")
        if isinstance(scenario, Reply):
            return scenario
        if isinstance(scenario, str):
            return self._fixture_reply(record, scenario)
        return scenario(record)

    def _check_auth(self, record: RecordedRequest) -> Reply | None:
        if self.api_key is None:
            return None
        header = record.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self._error(record, 401, _NO_KEY_MESSAGE)
        key = key.strip()
        if key != self.api_key:
            shown = key if len(key) <= 8 else key[:3] + "*" * (len(key) - 7) + key[-4:]
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return self._error(record, 401, message, code="invalid_api_key")
        return None

    def _check_body(self, record: RecordedRequest, body: Mapping[str, Any]) -> Reply | None:
        """The subset of OpenAI's request validation that catches translation bugs."""
        if not body.get("model"):
            return self._error(record, 400, "you must provide a model parameter")
        if "messages" not in body:
            message = "Missing required parameter: 'messages'."
            return self._error(record, 400, message, "messages", "missing_required_parameter")
        messages = body["messages"]
        if not isinstance(messages, list):
            kind = _json_kind(messages)
            message = f"Invalid type for 'messages': expected an array, but got {kind} instead."
            return self._error(record, 400, message, "messages", "invalid_type")
        if not messages:
            message = (
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead."
            )
            return self._error(record, 400, message, "messages", "empty_array")
        if body.get("stream_options") is not None and body.get("stream") is not True:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return self._error(record, 400, message, "stream_options")
        for i, msg in enumerate(messages):
            calls = msg.get("tool_calls") if isinstance(msg, dict) else None
            for j, call in enumerate(calls if isinstance(calls, list) else []):
                call_id = call.get("id") if isinstance(call, dict) else None
                if isinstance(call_id, str) and len(call_id) > 40:
                    where = f"messages[{i}].tool_calls[{j}].id"
                    message = (
                        f"Invalid '{where}': string too long. Expected a string with maximum length 40, "
                        f"but got a string with length {len(call_id)} instead."
                    )
                    return self._error(record, 400, message, where, "string_above_max_length")
        return self._check_tool_pairing(record, messages)

    def _check_tool_pairing(self, record: RecordedRequest, messages: list[Any]) -> Reply | None:
        """Every ``tool`` message answers an open call of the assistant message right before it, and
        every call is answered before the conversation moves on (OpenAI rejects both mistakes)."""
        open_ids: list[str] | None = None
        owner = -1
        for i, msg in enumerate(messages):
            role = msg.get("role") if isinstance(msg, dict) else None
            if role == "tool":
                call_id = msg.get("tool_call_id")
                if open_ids is None or call_id not in open_ids:
                    return self._error(record, 400, _ORPHAN_TOOL_MESSAGE, f"messages.[{i}].role")
                open_ids.remove(call_id)
                continue
            if open_ids:
                message = _UNANSWERED_CALLS_MESSAGE.format(ids=", ".join(open_ids))
                return self._error(record, 400, message, f"messages.[{owner}].role")
            open_ids = None
            calls = msg.get("tool_calls") if role == "assistant" else None
            if isinstance(calls, list) and calls:
                open_ids = [c["id"] for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str)]
                owner = i
        if open_ids:
            message = _UNANSWERED_CALLS_MESSAGE.format(ids=", ".join(open_ids))
            return self._error(record, 400, message, f"messages.[{owner}].role")
        return None

    # ----------------------------------------------------------------- replies

    def _openai_headers(self, record: RecordedRequest) -> dict[str, str]:
        return {
            "x-request-id": "req_" + hashlib.sha256(f"{self.seed}:{record.index}".encode()).hexdigest()[:32],
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(180 + record.index % 97),
        }

    def _error(
        self,
        record: RecordedRequest,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
    ) -> Reply:
        body = openai_error_body(message, type="invalid_request_error", param=param, code=code)
        return json_reply(body, status, headers=self._openai_headers(record))

    def _fixture_reply(self, record: RecordedRequest, case: str) -> Reply:
        """Replay ``<case>.stream.sse`` or ``<case>.response.json`` with the vendor's headers."""
        name = f"{case}.stream.sse" if record.stream else f"{case}.response.json"
        path = self.fixtures_dir / name
        if not path.is_file():
            kind = "streaming" if record.stream else "non-streaming"
            message = f"fake upstream: case '{case}' has no {kind} recording ({name})"
            return self._error(record, 400, message, "stream")
        style = _CASE_STYLE.get(case, "openai")
        if style == "llamacpp":
            kind_header = "text/event-stream" if record.stream else "application/json; charset=utf-8"
            headers = {"content-type": kind_header, "server": "llama.cpp"}
        elif style == "openai":
            headers = {"content-type": _SSE if record.stream else _JSON, **self._openai_headers(record)}
        else:  # vLLM and Mistral: Starlette/FastAPI-style defaults
            headers = {"content-type": _SSE if record.stream else _JSON}
        return Reply(200, path.read_bytes(), headers)

    def _error_fixture(self, name: str, status: int, extra: Mapping[str, str] | None = None) -> Scenario:
        def reply(record: RecordedRequest) -> Reply:
            headers = {**self._openai_headers(record), **(extra or {})}
            return json_reply(fixture_bytes(name, self.fixtures_dir), status, headers=headers)

        return reply

    def _envelope(self, record: RecordedRequest) -> tuple[str, str, int, int]:
        """Model, completion id, created and prompt tokens for a generated reply (deterministic)."""
        body: Mapping[str, Any] = record.body
        completion_id = "chatcmpl-" + _token(f"{self.seed}:{record.index}:completion", 29)
        return str(body.get("model")), completion_id, 1763050000 + record.index, _approx_tokens(body)

    def _completion(
        self, record: RecordedRequest, message: dict[str, Any], finish: str, usage: dict[str, Any]
    ) -> Reply:
        """A non-streaming ``chat.completion`` body in OpenAI's layout (2-space indent)."""
        model, completion_id, created, _ = self._envelope(record)
        message.update({"refusal": None, "annotations": []})
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        return json_reply(completion, headers=self._openai_headers(record))

    def _error_400_flat(self, record: RecordedRequest) -> Reply:
        """vLLM's (pre-2025) flat error object, with FastAPI's plain JSON headers."""
        return json_reply(fixture_bytes("error_400_flat.json", self.fixtures_dir), 400)

    def _generated_text(self, record: RecordedRequest, text: str) -> Reply:
        """Text built on the fly (agent/echo), one delta per word, framed like the ``text`` fixture."""
        model, completion_id, created, prompt_tokens = self._envelope(record)
        pieces = re.findall(r"\S+\s*|\s+", text)
        usage = _usage(prompt_tokens, max(1, len(pieces)))
        if not record.stream:
            return self._completion(record, {"role": "assistant", "content": text}, "stop", usage)
        stream = _OpenAIStream(completion_id, created, model, record.include_usage)
        stream.chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in pieces:
            stream.chunk({"content": piece})
        stream.chunk({}, "stop")
        return sse_reply(stream.finish(usage), headers=self._openai_headers(record))

    def _generated_call(self, record: RecordedRequest, name: str, arguments: str) -> Reply:
        """One tool call built on the fly, arguments in three fragments, framed like ``tool_call``."""
        model, completion_id, created, prompt_tokens = self._envelope(record)
        call_id = "call_" + _token(f"{self.seed}:{record.index}:call", 24)
        fragments = _split(arguments, 3)
        usage = _usage(prompt_tokens, 8 + len(fragments))
        if not record.stream:
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return self._completion(record, message, "tool_calls", usage)
        stream = _OpenAIStream(completion_id, created, model, record.include_usage)
        first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        stream.chunk({"role": "assistant", "content": None, "tool_calls": [first], "refusal": None})
        for fragment in fragments:
            stream.chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
        stream.chunk({}, "tool_calls")
        return sse_reply(stream.finish(usage), headers=self._openai_headers(record))

    def _agent(self, record: RecordedRequest) -> Reply:
        """A one-tool agent: call the first tool, then summarise the tool's answer."""
        body: Mapping[str, Any] = record.body
        messages = body.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        if isinstance(last, dict) and last.get("role") == "tool":
            return self._generated_text(record, "The tool said: " + _text_of(last.get("content")))
        tool = _first_function_tool(body.get("tools"))
        if tool is None or body.get("tool_choice") == "none":
            return self._generated_text(record, "I have no tool to call.")
        name, parameters = tool
        arguments = json.dumps(_fake_arguments(parameters), separators=(",", ":"), ensure_ascii=False)
        return self._generated_call(record, name, arguments)

    def _echo(self, record: RecordedRequest) -> Reply:
        """Answer with the text of the last user message, word by word."""
        messages = record.body.get("messages")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return self._generated_text(record, _text_of(users[-1].get("content")) if users else "")

    def _slow(self, record: RecordedRequest) -> Reply:
        """The ``text`` case, but only after ``slow_seconds`` of silence (for read-timeout tests)."""
        reply = self._fixture_reply(record, "text")
        return Reply(reply.status, reply.body, reply.headers, delay=self.slow_seconds)

    def _hang_midstream(self, record: RecordedRequest) -> Reply:
        """The start of the ``text`` case (role chunk + two deltas), then silence until the client leaves."""
        reply = self._fixture_reply(record, "text")
        if record.stream:
            frames = reply.body.split(b"\n\n")
            return Reply(200, b"\n\n".join(frames[:3]) + b"\n\n", reply.headers, hang=True)
        # Non-streaming: promise the whole JSON body, deliver a prefix, stall.
        headers = {**reply.headers, "content-length": str(len(reply.body))}
        return Reply(200, reply.body[: len(reply.body) // 2], headers, hang=True)

    def _default_scenarios(self) -> dict[str, Scenario]:
        scenarios: dict[str, Scenario] = {f"fake-{case}": case for case in fixture_cases(self.fixtures_dir)}
        scenarios.update(
            {
                "fake-agent": self._agent,
                "fake-echo": self._echo,
                "fake-slow": self._slow,
                "fake-hang-midstream": self._hang_midstream,
                "fake-error-400": self._error_fixture("error_400.json", 400),
                "fake-error-400-flat": self._error_400_flat,
                "fake-error-401": self._error_fixture("error_401.json", 401),
                "fake-error-429": self._error_fixture("error_429.json", 429, {"retry-after": "7"}),
                "fake-error-500": self._error_fixture("error_500.json", 500),
                "fake-error-503": self._error_fixture("error_503.json", 503),
            }
        )
        return scenarios


def create_fake_chat(
    scenarios: Mapping[str, Scenario] | None = None,
    *,
    api_key: str | None = None,
    chunk_size: int | tuple[int, int] = (1, 40),
    write_delay: float = 0.0,
    slow_seconds: float = 30.0,
    seed: int = 0,
    validate: bool = True,
    fixtures_dir: Path = FIXTURES_DIR,
) -> FakeChat:
    """Build a fake Chat Completions upstream.

    ``scenarios`` adds or overrides models (name -> fixture case, :class:`Reply`
    or ``callable(RecordedRequest) -> Reply``). ``api_key`` turns on bearer-key
    checking (401 otherwise). ``chunk_size`` is the byte range of each write
    (an ``int`` for a fixed size); ``write_delay`` the pause between writes
    (``0`` still yields to the loop). ``slow_seconds`` is how long ``fake-slow``
    stays silent. ``seed`` makes piece sizes and generated ids reproducible.
    ``validate=False`` skips OpenAI-style request validation.
    """
    return FakeChat(
        scenarios,
        api_key=api_key,
        chunk_size=chunk_size,
        write_delay=write_delay,
        slow_seconds=slow_seconds,
        seed=seed,
        validate=validate,
        fixtures_dir=fixtures_dir,
    )
