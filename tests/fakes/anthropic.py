"""A fake Anthropic Messages upstream (``POST /v1/messages``) for Rosetta's gateway tests.

Why it exists: the gateway translates Responses API calls into Anthropic
Messages calls. Its tests need an upstream that (1) answers with the bytes the
real API sends (``event:`` lines, ``ping`` frames, the whitespace Anthropic
pads its JSON with, ``event: error`` after a 200), (2) delivers them in
awkward pieces so SSE parsing meets arbitrary chunk boundaries, (3) records
exactly what the gateway sent, and (4) rejects malformed conversations the way
Anthropic does (tool pairing, empty text, thinking rules, the
``anthropic-version: 2026-10-21`` sampling ban), so a translation bug surfaces
as the 400 it would cause in production instead of passing silently.

It is the twin of :mod:`tests.fakes.chat_completions` and is used the same way
(``tests/fixtures/anthropic/README.md`` lists every model)::

    fake = create_fake_anthropic(api_key="sk-ant-test")
    with serve(fake) as base_url:
        ...  # point the gateway's Anthropic upstream at base_url, model "fake-tool_use"
    assert fake.requests[0].headers["anthropic-version"] == "2023-06-01"

The reply is chosen by the upstream ``model`` field: ``fake-<case>`` replays
``tests/fixtures/anthropic/<case>.stream.sse`` (``"stream": true``) or
``<case>.response.json``; scripted models (``fake-agent``,
``fake-thinking-agent``, ``fake-echo``, ``fake-error-*``, ``fake-slow``,
``fake-hang-midstream``) cover agent loops, thinking replay, errors, timeouts
and cancellation. Pass ``scenarios`` to add or override models.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeGuard

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import chat_completions as _chat
from ._common import (
    FakeUpstream,
    RecordedRequest,
    Reply,
    ReplyResponse,
    Scenario,
    _fake_arguments,
    _split,
    json_reply,
    sse_reply,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "FIXTURES_DIR",
    "SAMPLING_FREE_VERSION",
    "THINKING_SIGNING_KEY",
    "FakeAnthropic",
    "RecordedRequest",
    "Reply",
    "Scenario",
    "anthropic_error_body",
    "create_fake_anthropic",
    "fixture_bytes",
    "fixture_cases",
    "json_reply",
    "sse_reply",
    "thinking_signature",
]

FIXTURES_DIR: Final = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"

#: The classic API version every integration pins.
ANTHROPIC_VERSION: Final = "2023-06-01"
#: The version SDK 2.x sends, under which ``temperature``/``top_p``/``top_k`` are 400s.
SAMPLING_FREE_VERSION: Final = "2026-10-21"
#: Key of the HMAC that signs ``fake-thinking-agent`` thinking blocks (see :func:`thinking_signature`).
THINKING_SIGNING_KEY: Final = b"rosetta-fake-anthropic-thinking"

_SSE: Final = "text/event-stream; charset=utf-8"
_JSON: Final = "application/json"
_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_ORGANIZATION: Final = "4f2c9b7e-3d1a-4e8b-9c6f-1a2b3c4d5e6f"
_MODEL_CREATED: Final = "2025-09-29T00:00:00Z"
_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]+")
_TOOL_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_SAMPLING_FIELDS: Final = ("temperature", "top_p", "top_k")

# Dialect of each fixture case that is not from api.anthropic.com, for realistic response headers.
_CASE_STYLE: Final[Mapping[str, str]] = {"llamacpp_tool_use": "llamacpp"}

# Error messages, worded as the real API words them (sources in tests/fixtures/anthropic/README.md).
_NO_KEY: Final = "x-api-key header is required"
_BAD_KEY: Final = "invalid x-api-key"
_NO_VERSION: Final = "anthropic-version: header is required"
_NOT_JSON: Final = "There was an error parsing the body of your request. Please make sure it is valid JSON."
_EMPTY_TEXT: Final = "messages: text content blocks must be non-empty"
_BLANK_TEXT: Final = "messages: text content blocks must contain non-whitespace text"
_FIRST_NOT_USER: Final = 'messages: first message must use the "user" role'
_SYSTEM_ROLE: Final = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
    'not "system" as an input message role.'
)
_NO_CONTENT: Final = (
    "messages.{index}: all messages must have non-empty content except for the optional final "
    "assistant message"
)
_TRAILING_SPACE: Final = "messages: final assistant content cannot end with trailing whitespace"
_FORCED_TOOL: Final = "Thinking may not be enabled when tool_choice forces tool use."
_BUDGET_ABOVE_MAX: Final = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)
_UNANSWERED: Final = (
    "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: {ids}. "
    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
)
_ORPHAN_RESULT: Final = (
    "messages.{index}.content.{block}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. "
    "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
)
_THINKING_FIRST: Final = (
    "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). To avoid this requirement, "
    "disable `thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


# --------------------------------------------------------------------------------------------- public helpers


def fixture_bytes(name: str, fixtures_dir: Path = FIXTURES_DIR) -> bytes:
    """Exact bytes of one fixture file, e.g. ``fixture_bytes("text.stream.sse")``."""
    return _chat.fixture_bytes(name, fixtures_dir)


def fixture_cases(fixtures_dir: Path = FIXTURES_DIR) -> list[str]:
    """Names of all replayable cases (those with a ``.stream.sse`` or ``.response.json``)."""
    return _chat.fixture_cases(fixtures_dir)


def anthropic_error_body(message: str, *, type: str, request_id: str) -> bytes:
    """An error body laid out like Anthropic's: compact ``{"type":"error","error":{...},"request_id"}``."""
    return _compact({"type": "error", "error": {"type": type, "message": message}, "request_id": request_id})


def thinking_signature(thinking: str, key: bytes = THINKING_SIGNING_KEY) -> str:
    """The signature ``fake-thinking-agent`` puts on a thinking block with text ``thinking``.

    Real signatures are opaque, base64, a few hundred characters, and the API
    rejects a thinking block whose text or signature was changed. To make the
    fake just as strict without keeping state, the signature is derived from
    the text alone: base64 of a protobuf-looking envelope (``0x12``, a varint
    length) around six HMAC-SHA256 blocks of the text under ``key``. The fake
    recomputes it on replay, so any edit to either field is caught.
    """
    inner = b"".join(hmac.new(key, f"{i}:{thinking}".encode(), hashlib.sha256).digest() for i in range(6))
    return base64.b64encode(b"\x12" + _varint(len(inner)) + inner).decode()


# --------------------------------------------------------------------------------------------- helpers


def _compact(obj: Any) -> bytes:
    """Anthropic's JSON layout: compact separators, raw UTF-8, no trailing newline."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _b58(seed: str, length: int) -> str:
    """Deterministic base58 id material (Anthropic ids use base58), so recorded runs are reproducible."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    return "".join(rng.choice(_B58) for _ in range(length))


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _blocks_of(content: Any) -> list[Any]:
    """A message's ``content`` as a block list (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content if isinstance(content, list) else []


def _text_of(content: Any) -> str:
    """Plain text of a ``content`` value or ``tool_result.content`` (string or text blocks)."""
    return "".join(
        block["text"]
        for block in _blocks_of(content)
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    )


def _approx_tokens(body: Mapping[str, Any]) -> int:
    """A stable, plausible input token count: about four characters per token of everything sent."""
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    chars = sum(len(json.dumps(part, ensure_ascii=False)) for part in parts if part is not None)
    messages = body.get("messages")
    return max(1, chars // 4 + 3 * (len(messages) if isinstance(messages, list) else 0))


def _words(text: str) -> list[str]:
    """One delta per word (trailing whitespace kept), as the generated replies stream text."""
    return re.findall(r"\S+\s*|\s+", text)


def _estimate_output(blocks: list[dict[str, Any]]) -> int:
    """Output tokens of generated content: thinking and text by words, tool calls by JSON length."""
    total = 1
    for block in blocks:
        if block["type"] == "tool_use":
            total += 8 + len(json.dumps(block["input"])) // 4
        else:
            total += len(_words(block.get("text") or block.get("thinking") or ""))
    return total


@dataclass
class _Turn:
    """Consecutive messages of one role, merged as the API merges them before checking tool pairing."""

    role: str
    blocks: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (message, block, block)

    def tool_use_ids(self) -> list[str]:
        return [
            b["id"] for _, _, b in self.blocks if b.get("type") == "tool_use" and isinstance(b.get("id"), str)
        ]


def _turns(messages: list[Any]) -> list[_Turn]:
    turns: list[_Turn] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if not turns or turns[-1].role != role:
            turns.append(_Turn(str(role)))
        for j, block in enumerate(_blocks_of(message.get("content"))):
            if isinstance(block, dict):
                turns[-1].blocks.append((i, j, block))
    return turns


# --------------------------------------------------------------------------------------------- validation


def _request_problem(body: Mapping[str, Any], version: str, *, count_tokens: bool = False) -> str | None:
    """The first reason Anthropic would reject ``body`` with a 400, or ``None`` if it looks valid.

    This is the subset of the API's validation that catches translation bugs;
    each message is worded as the API words it.
    """
    for check in (_top_level_problem, _tools_problem, _thinking_problem, _messages_problem):
        problem = check(body, version, count_tokens)
        if problem is not None:
            return problem
    return None


def _top_level_problem(body: Mapping[str, Any], version: str, count_tokens: bool) -> str | None:
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not count_tokens:
        if "max_tokens" not in body:
            return "max_tokens: Field required"
        if not _is_int(body["max_tokens"]):
            return "max_tokens: Input should be a valid integer"
        if body["max_tokens"] < 0:
            return "max_tokens: Input should be greater than or equal to 0"
    if "messages" not in body:
        return "messages: Field required"
    if not isinstance(body["messages"], list):
        return "messages: Input should be a valid list"
    if not body["messages"]:
        return "messages: at least one message is required"
    if version == SAMPLING_FREE_VERSION:
        for name in _SAMPLING_FIELDS:
            if name in body:
                return f"{name}: Extra inputs are not permitted"
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list):
            return "system: Input should be a valid string"
        for block in system:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str) and not text:
                return "system: text content blocks must be non-empty"
            if isinstance(text, str) and not text.strip():
                return "system: text content blocks must contain non-whitespace text"
    return None


def _tools_problem(body: Mapping[str, Any], version: str, count_tokens: bool) -> str | None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools: Input should be a valid list"
        names: set[str] = set()
        for n, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return f"tools.{n}: Input should be a valid dictionary"
            if tool.get("type", "custom") != "custom":
                continue  # Anthropic-defined (versioned) tools have fixed names and no input_schema
            name = tool.get("name")
            if not isinstance(name, str):
                return f"tools.{n}.custom.name: Field required"
            if not _TOOL_NAME_PATTERN.fullmatch(name):
                return f"tools.{n}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            if name in names:
                return "tools: Tool names must be unique."
            names.add(name)
            schema = tool.get("input_schema")
            if schema is None:
                return f"tools.{n}.custom.input_schema: Field required"
            if not isinstance(schema, dict) or schema.get("type") != "object":
                return f"tools.{n}.custom.input_schema.type: Input should be 'object'"
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict):
            return "tool_choice: Input should be a valid dictionary"
        kind = choice.get("type")
        if kind not in ("auto", "any", "tool", "none"):
            return (
                f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected "
                "tags: 'auto', 'any', 'tool', 'none'"
            )
        if kind == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
    return None


def _thinking_problem(body: Mapping[str, Any], version: str, count_tokens: bool) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        return "thinking: Input should be a valid dictionary"
    kind = thinking.get("type")
    if kind not in ("enabled", "disabled", "adaptive"):
        return (
            f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'adaptive', 'disabled', 'enabled'"
        )
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if budget is None:
            return "thinking.enabled.budget_tokens: Field required"
        if not _is_int(budget):
            return "thinking.enabled.budget_tokens: Input should be a valid integer"
        if budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        max_tokens = body.get("max_tokens")
        if not count_tokens and _is_int(max_tokens) and max_tokens <= budget:
            return _BUDGET_ABOVE_MAX
    choice = body.get("tool_choice")
    if kind != "disabled" and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return _FORCED_TOOL
    return None


def _messages_problem(body: Mapping[str, Any], version: str, count_tokens: bool) -> str | None:
    messages: list[Any] = body["messages"]
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be a valid dictionary"
        role = message.get("role")
        if role == "system":
            return _SYSTEM_ROLE
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if "content" not in message:
            return f"messages.{i}.content: Field required"
    if messages[0]["role"] != "user":
        return _FIRST_NOT_USER
    seen_ids: set[str] = set()
    for i, message in enumerate(messages):
        problem = _content_problem(i, message, final=i == len(messages) - 1, seen_ids=seen_ids)
        if problem is not None:
            return problem
    return _pairing_problem(_turns(messages))


def _content_problem(i: int, message: dict[str, Any], *, final: bool, seen_ids: set[str]) -> str | None:
    """Block-level rules of one message: non-empty text, block kinds per role, id patterns."""
    role, content = message["role"], message["content"]
    final_assistant = final and role == "assistant"
    if isinstance(content, str):
        if final_assistant:
            return _TRAILING_SPACE if content != content.rstrip() else None
        if not content:
            return _NO_CONTENT.format(index=i)
        return _BLANK_TEXT if not content.strip() else None
    if not isinstance(content, list):
        return f"messages.{i}.content: Input should be a valid string or a valid list"
    if not content and not final_assistant:
        return _NO_CONTENT.format(index=i)
    for j, block in enumerate(content):
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict):
            return f"{where}: Input should be a valid dictionary"
        kind = block.get("type")
        if kind == "text":
            problem = _text_block_problem(where, block)
            if problem is not None:
                return problem
        elif kind == "tool_use":
            if role != "assistant":
                return f"{where}: `tool_use` blocks can only be in `assistant` messages"
            tool_id = block.get("id")
            if not isinstance(tool_id, str) or not _ID_PATTERN.fullmatch(tool_id):
                return f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
            if tool_id in seen_ids:
                return "messages: `tool_use` ids must be unique"
            seen_ids.add(tool_id)
            if not isinstance(block.get("name"), str):
                return f"{where}.tool_use.name: Field required"
            if not isinstance(block.get("input"), dict):
                return f"{where}.tool_use.input: Input should be a valid dictionary"
        elif kind == "tool_result":
            if role != "user":
                return f"{where}: `tool_result` blocks can only be in `user` messages"
            result_id = block.get("tool_use_id")
            if not isinstance(result_id, str) or not _ID_PATTERN.fullmatch(result_id):
                return f"{where}.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'"
            nested = block.get("content")
            for k, part in enumerate(nested if isinstance(nested, list) else []):
                if isinstance(part, dict) and part.get("type") == "text":
                    problem = _text_block_problem(f"{where}.tool_result.content.{k}", part)
                    if problem is not None:
                        return problem
    if final_assistant:
        texts = [b for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if texts and content[-1] is texts[-1] and texts[-1]["text"] != texts[-1]["text"].rstrip():
            return _TRAILING_SPACE
    return None


def _text_block_problem(where: str, block: dict[str, Any]) -> str | None:
    text = block.get("text")
    if not isinstance(text, str):
        return f"{where}.text.text: Field required"
    if not text:
        return _EMPTY_TEXT
    return _BLANK_TEXT if not text.strip() else None


def _pairing_problem(turns: list[_Turn]) -> str | None:
    """Tool results go first in the user turn right after the assistant turn that called, one per call."""
    for t, turn in enumerate(turns):
        if turn.role == "assistant":
            ids = turn.tool_use_ids()
            if not ids:
                continue
            answered: set[Any] = set()
            following = turns[t + 1] if t + 1 < len(turns) else None
            if following is not None and following.role == "user":
                for _, _, block in following.blocks:
                    if block.get("type") != "tool_result":
                        break  # results after other content are not "immediately after"
                    answered.add(block.get("tool_use_id"))
            missing = [tool_id for tool_id in ids if tool_id not in answered]
            if missing:
                owner = max(i for i, _, b in turn.blocks if b.get("type") == "tool_use")
                return _UNANSWERED.format(index=owner, ids=", ".join(missing))
        else:
            previous = turns[t - 1] if t > 0 else None
            offered = set(previous.tool_use_ids()) if previous is not None else set()
            for i, j, block in turn.blocks:
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in offered:
                    return _ORPHAN_RESULT.format(index=i, block=j, id=block.get("tool_use_id"))
    return None


def _thinking_replay_problem(body: Mapping[str, Any], key: bytes) -> str | None:
    """What ``fake-thinking-agent`` checks on top of the general rules, as the API does with thinking on.

    Thinking must be enabled; every thinking block sent back must carry the
    signature issued for its text; and the final assistant turn, if it called
    tools, must start with its thinking block.
    """
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return (
            "thinking: fake-thinking-agent only runs with extended thinking enabled: send "
            '{"type": "enabled", "budget_tokens": N} with 1024 <= N < max_tokens'
        )
    budget, max_tokens = thinking.get("budget_tokens"), body.get("max_tokens")
    if not _is_int(budget) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if not _is_int(max_tokens) or max_tokens <= budget:
        return _BUDGET_ABOVE_MAX
    turns = _turns(body["messages"])
    for turn in turns:
        for i, j, block in turn.blocks:
            if turn.role != "assistant":
                continue
            if block.get("type") == "thinking":
                text, signature = block.get("thinking"), block.get("signature")
                if not isinstance(text, str) or signature != thinking_signature(text, key):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
            elif block.get("type") == "redacted_thinking":
                return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
    final = next((turn for turn in reversed(turns) if turn.role == "assistant"), None)
    if final is not None and final.tool_use_ids():
        first_message, _, first = final.blocks[0]
        if first.get("type") not in ("thinking", "redacted_thinking"):
            return _THINKING_FIRST.format(index=first_message, found=first.get("type"))
    return None


# --------------------------------------------------------------------------------------------- replies


class _Frames:
    """Anthropic-framed SSE: ``event:`` + ``data:`` lines, JSON padded with spaces before its last brace.

    The padding (0-15 spaces, varying per frame) is what api.anthropic.com
    sends; ``ping`` frames are the one exception and use Python's default
    ``", "``/``": "`` separators instead.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._out: list[str] = []

    def event(self, obj: Mapping[str, Any]) -> None:
        data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        self._out.append(f"event: {obj['type']}\ndata: {data[:-1]}{' ' * self._rng.randint(0, 15)}}}\n\n")

    def ping(self) -> None:
        self._out.append('event: ping\ndata: {"type": "ping"}\n\n')

    def body(self) -> bytes:
        return "".join(self._out).encode()


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """The full usage object of ``message_start`` and non-streamed messages (no caching)."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


@dataclass
class _Draft:
    """A generated assistant message, rendered as Anthropic SSE or as one JSON body."""

    model: str
    message_id: str
    input_tokens: int
    blocks: list[dict[str, Any]]
    stop_reason: str

    def message(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "content": self.blocks,
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "stop_details": None,
            "usage": _usage(self.input_tokens, _estimate_output(self.blocks)),
        }

    def stream(self, rng: random.Random) -> bytes:
        """The same content as :meth:`message`, event by event, framed like the fixtures."""
        frames = _Frames(rng)
        start = {**self.message(), "content": [], "stop_reason": None, "usage": _usage(self.input_tokens, 1)}
        frames.event({"type": "message_start", "message": start})
        for index, block in enumerate(self.blocks):
            kind = block["type"]
            if kind == "thinking":
                opening: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": w} for w in _words(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            elif kind == "text":
                opening = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": w} for w in _words(block["text"])]
            else:
                opening = {**block, "input": {}}
                arguments = json.dumps(block["input"], ensure_ascii=False) if block["input"] else ""
                fragments = ["", *(_split(arguments, 3) if arguments else [])]
                deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
            frames.event({"type": "content_block_start", "index": index, "content_block": opening})
            if index == 0:
                frames.ping()
            for delta in deltas:
                frames.event({"type": "content_block_delta", "index": index, "delta": delta})
            frames.event({"type": "content_block_stop", "index": index})
        usage = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": _estimate_output(self.blocks),
        }
        ending = {"stop_reason": self.stop_reason, "stop_sequence": None, "stop_details": None}
        frames.event({"type": "message_delta", "delta": ending, "usage": usage})
        frames.event({"type": "message_stop"})
        return frames.body()


# --------------------------------------------------------------------------------------------- the fake


class FakeAnthropic(FakeUpstream):
    """The fake Anthropic upstream: an ASGI app plus everything a test wants to inspect.

    Same shape as :class:`~tests.fakes.chat_completions.FakeChat`: tests read
    ``requests`` (list of :class:`RecordedRequest`, in arrival order),
    ``last_request``, ``disconnects`` (replies abandoned by the client, via
    ``until_disconnects``/``wait_for_disconnects``) and ``scenarios`` (model
    name -> :data:`Scenario`, mutable between requests), and call ``reset()``.
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
        signing_key: bytes = THINKING_SIGNING_KEY,
    ) -> None:
        self.signing_key = signing_key  # before the base builds scenarios that use it
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
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route(
                "/{path:path}",
                self._not_found,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            ),
        ]

    # ----------------------------------------------------------------- routes

    async def _messages(self, request: Request) -> Response:
        record = await self._record(request)
        return ReplyResponse(self, record, self._decide(record))

    async def _count_tokens(self, request: Request) -> Response:
        record = await self._record(request)
        reply = self._admit(record, count_tokens=True)
        if reply is None:
            body = _compact({"input_tokens": _approx_tokens(record.body)})
            reply = json_reply(body, headers=self._headers(record))
        return ReplyResponse(self, record, reply)

    async def _models(self, request: Request) -> Response:
        record = await self._record(request)
        reply = self._check_auth(record)
        if reply is None:
            names = sorted(self.scenarios)
            data = [
                {"type": "model", "id": name, "display_name": name, "created_at": _MODEL_CREATED}
                for name in names
            ]
            first, last = (names[0], names[-1]) if names else (None, None)
            listing = {"data": data, "has_more": False, "first_id": first, "last_id": last}
            reply = json_reply(_compact(listing), headers=self._headers(record))
        return ReplyResponse(self, record, reply)

    async def _not_found(self, request: Request) -> Response:
        record = await self._record(request)
        return ReplyResponse(self, record, self._error(record, 404, "Not Found", "not_found_error"))

    # ----------------------------------------------------------------- policy

    def _decide(self, record: RecordedRequest) -> Reply:
        """Validate like Anthropic would, then pick the scenario named by ``model``."""
        invalid = self._admit(record)
        if invalid is not None:
            return invalid
        model = record.body.get("model")
        scenario = self.scenarios.get(model) if isinstance(model, str) else None
        if scenario is None:
            return self._error(record, 404, f"model: {model}", "not_found_error")
        if isinstance(scenario, Reply):
            return scenario
        if isinstance(scenario, str):
            return self._fixture_reply(record, scenario)
        return scenario(record)

    def _admit(self, record: RecordedRequest, *, count_tokens: bool = False) -> Reply | None:
        """Key, ``anthropic-version``, a JSON object body, then (if ``validate``) the body rules."""
        refused = self._check_auth(record)
        if refused is not None:
            return refused
        version = record.headers.get("anthropic-version")
        if self.validate and not version:
            return self._error(record, 400, _NO_VERSION)
        if not isinstance(record.body, dict):
            return self._error(record, 400, _NOT_JSON)
        if self.validate:
            problem = _request_problem(record.body, version or "", count_tokens=count_tokens)
            if problem is not None:
                return self._error(record, 400, problem)
        return None

    def _check_auth(self, record: RecordedRequest) -> Reply | None:
        """``x-api-key`` (the documented header) or ``Authorization: Bearer`` (what SDK 2.x sends)."""
        if self.api_key is None:
            return None
        key = record.headers.get("x-api-key")
        if key is None:
            scheme, _, bearer = record.headers.get("authorization", "").partition(" ")
            key = bearer.strip() if scheme.lower() == "bearer" and bearer.strip() else None
        if key is None:
            return self._error(record, 401, _NO_KEY, "authentication_error")
        if key != self.api_key:
            return self._error(record, 401, _BAD_KEY, "authentication_error")
        return None

    # ----------------------------------------------------------------- replies

    def _request_id(self, record: RecordedRequest) -> str:
        return "req_011C" + _b58(f"{self.seed}:{record.index}:request", 20)

    def _headers(self, record: RecordedRequest, request_id: str | None = None) -> dict[str, str]:
        return {
            "request-id": request_id or self._request_id(record),
            "anthropic-organization-id": _ORGANIZATION,
        }

    def _error(
        self, record: RecordedRequest, status: int, message: str, type: str = "invalid_request_error"
    ) -> Reply:
        request_id = self._request_id(record)
        body = anthropic_error_body(message, type=type, request_id=request_id)
        return json_reply(body, status, headers=self._headers(record, request_id))

    def _fixture_reply(self, record: RecordedRequest, case: str) -> Reply:
        """Replay ``<case>.stream.sse`` or ``<case>.response.json`` with the vendor's headers."""
        name = f"{case}.stream.sse" if record.stream else f"{case}.response.json"
        path = self.fixtures_dir / name
        if not path.is_file():
            kind = "streaming" if record.stream else "non-streaming"
            return self._error(record, 400, f"fake upstream: case '{case}' has no {kind} recording ({name})")
        if _CASE_STYLE.get(case) == "llamacpp":
            kind_header = "text/event-stream" if record.stream else "application/json; charset=utf-8"
            headers = {"content-type": kind_header, "server": "llama.cpp"}
        elif record.stream:
            headers = {"content-type": _SSE, "cache-control": "no-cache", **self._headers(record)}
        else:
            headers = {"content-type": _JSON, **self._headers(record)}
        return Reply(200, path.read_bytes(), headers)

    def _error_fixture(self, name: str, status: int, extra: Mapping[str, str] | None = None) -> Scenario:
        """A recorded error body; the ``request-id`` header repeats the body's ``request_id``."""

        def reply(record: RecordedRequest) -> Reply:
            body = fixture_bytes(name, self.fixtures_dir)
            request_id = json.loads(body).get("request_id")
            headers = {**self._headers(record, request_id), **(extra or {})}
            return json_reply(body, status, headers=headers)

        return reply

    def _generated(self, record: RecordedRequest, blocks: list[dict[str, Any]], stop_reason: str) -> Reply:
        """A reply built on the fly (agents, echo), laid out exactly like the fixtures."""
        body: Mapping[str, Any] = record.body
        message_id = "msg_01" + _b58(f"{self.seed}:{record.index}:message", 22)
        draft = _Draft(str(body.get("model")), message_id, _approx_tokens(body), blocks, stop_reason)
        if record.stream:
            rng = random.Random(f"{self.seed}:{record.index}:padding")
            headers = {"cache-control": "no-cache", **self._headers(record)}
            return sse_reply(draft.stream(rng), headers=headers)
        return json_reply(_compact(draft.message()), headers=self._headers(record))

    def _plan(self, record: RecordedRequest) -> tuple[str, list[dict[str, Any]], str]:
        """What an agent does next: (thinking it would have, content blocks, stop reason).

        After a ``tool_result`` it reports the result; otherwise it calls the
        first custom tool (or the one ``tool_choice`` names) with arguments
        built from the schema's required properties; with no tool to call it
        says so.
        """
        body: Mapping[str, Any] = record.body
        messages = body.get("messages")
        last = messages[-1] if isinstance(messages, list) and messages else None
        last = last if isinstance(last, dict) else {}
        results = [
            block
            for block in _blocks_of(last.get("content") if last.get("role") == "user" else None)
            if isinstance(block, dict) and block.get("type") == "tool_result"
        ]
        if results:
            said = "\n".join(_text_of(block.get("content")) for block in results)
            text = "The tool said: " + said
            return (
                "The tool has answered, so I will pass its result on.",
                [{"type": "text", "text": text}],
                "end_turn",
            )
        tool = self._tool_to_call(body)
        if tool is None:
            text = "I have no tool to call."
            return (
                "There is no tool I can call, so I will say so.",
                [{"type": "text", "text": text}],
                "end_turn",
            )
        name, schema = tool
        arguments = _fake_arguments(schema)
        call = {
            "type": "tool_use",
            "id": "toolu_01" + _b58(f"{self.seed}:{record.index}:tool_use", 22),
            "name": name,
            "input": arguments,
            "caller": {"type": "direct"},
        }
        thought = f"The user needs {name}. I will call it with {json.dumps(arguments, ensure_ascii=False)}."
        return thought, [call], "tool_use"

    @staticmethod
    def _tool_to_call(body: Mapping[str, Any]) -> tuple[str, Any] | None:
        choice = body.get("tool_choice")
        choice = choice if isinstance(choice, dict) else {}
        if choice.get("type") == "none":
            return None
        tools = body.get("tools")
        custom = [
            (tool["name"], tool.get("input_schema"))
            for tool in (tools if isinstance(tools, list) else [])
            if isinstance(tool, dict)
            and tool.get("type", "custom") == "custom"
            and isinstance(tool.get("name"), str)
        ]
        if choice.get("type") == "tool":
            custom = [entry for entry in custom if entry[0] == choice.get("name")]
        return custom[0] if custom else None

    def _agent(self, record: RecordedRequest) -> Reply:
        """A one-tool agent: call the first tool, then report what the tool said."""
        _, blocks, stop_reason = self._plan(record)
        return self._generated(record, blocks, stop_reason)

    def _thinking_agent(self, record: RecordedRequest) -> Reply:
        """Like ``fake-agent``, but each reply opens with a signed thinking block that must come back."""
        if self.validate:
            problem = _thinking_replay_problem(record.body, self.signing_key)
            if problem is not None:
                return self._error(record, 400, problem)
        thought, blocks, stop_reason = self._plan(record)
        thinking = {
            "type": "thinking",
            "thinking": thought,
            "signature": thinking_signature(thought, self.signing_key),
        }
        return self._generated(record, [thinking, *blocks], stop_reason)

    def _echo(self, record: RecordedRequest) -> Reply:
        """Answer with the text of the last user message, word by word."""
        messages = record.body.get("messages")
        messages = messages if isinstance(messages, list) else []
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = _text_of(users[-1].get("content")) if users else ""
        return self._generated(record, [{"type": "text", "text": text}] if text else [], "end_turn")

    def _slow(self, record: RecordedRequest) -> Reply:
        """The ``text`` case, but only after ``slow_seconds`` of silence (for read-timeout tests)."""
        reply = self._fixture_reply(record, "text")
        return Reply(reply.status, reply.body, reply.headers, delay=self.slow_seconds)

    def _hang_midstream(self, record: RecordedRequest) -> Reply:
        """The start of ``text`` (message_start, block start, ping, two deltas), then silence until the
        client leaves."""
        reply = self._fixture_reply(record, "text")
        if record.stream:
            frames = reply.body.split(b"\n\n")
            return Reply(200, b"\n\n".join(frames[:5]) + b"\n\n", reply.headers, hang=True)
        # Non-streaming: promise the whole JSON body, deliver a prefix, stall.
        headers = {**reply.headers, "content-length": str(len(reply.body))}
        return Reply(200, reply.body[: len(reply.body) // 2], headers, hang=True)

    def _default_scenarios(self) -> dict[str, Scenario]:
        scenarios: dict[str, Scenario] = {f"fake-{case}": case for case in fixture_cases(self.fixtures_dir)}
        scenarios.update(
            {
                "fake-agent": self._agent,
                "fake-thinking-agent": self._thinking_agent,
                "fake-echo": self._echo,
                "fake-slow": self._slow,
                "fake-hang-midstream": self._hang_midstream,
                "fake-error-400": self._error_fixture("error_400.json", 400),
                "fake-error-401": self._error_fixture("error_401.json", 401),
                "fake-error-429": self._error_fixture("error_429.json", 429, {"retry-after": "7"}),
                "fake-error-500": self._error_fixture("error_500.json", 500),
                "fake-error-529": self._error_fixture("error_529.json", 529),
            }
        )
        return scenarios


def create_fake_anthropic(
    scenarios: Mapping[str, Scenario] | None = None,
    *,
    api_key: str | None = None,
    chunk_size: int | tuple[int, int] = (1, 40),
    write_delay: float = 0.0,
    slow_seconds: float = 30.0,
    seed: int = 0,
    validate: bool = True,
    fixtures_dir: Path = FIXTURES_DIR,
    signing_key: bytes = THINKING_SIGNING_KEY,
) -> FakeAnthropic:
    """Build a fake Anthropic Messages upstream.

    ``scenarios`` adds or overrides models (name -> fixture case, :class:`Reply`
    or ``callable(RecordedRequest) -> Reply``). ``api_key`` turns on key
    checking (``x-api-key`` or ``Authorization: Bearer``; 401 otherwise).
    ``chunk_size`` is the byte range of each write (an ``int`` for a fixed
    size); ``write_delay`` the pause between writes (``0`` still yields to the
    loop). ``slow_seconds`` is how long ``fake-slow`` stays silent. ``seed``
    makes piece sizes, padding and generated ids reproducible.
    ``validate=False`` skips Anthropic-style request validation (including
    ``fake-thinking-agent``'s replay checks). ``signing_key`` keys
    :func:`thinking_signature`.
    """
    return FakeAnthropic(
        scenarios,
        api_key=api_key,
        chunk_size=chunk_size,
        write_delay=write_delay,
        slow_seconds=slow_seconds,
        seed=seed,
        validate=validate,
        fixtures_dir=fixtures_dir,
        signing_key=signing_key,
    )
