"""Tests of the test doubles themselves: fixtures, the fake upstream and the loopback server.

Why these exist: every adapter and gateway test trusts the fake to behave like
a real Chat Completions server. The most direct check is to drive it with the
official ``openai`` SDK (strict response validation on), which would choke on
anything a real client could not parse, and to check each fixture against the
SDK's own types.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from .chat_completions import (
    FIXTURES_DIR,
    FakeChat,
    RecordedRequest,
    Reply,
    create_fake_chat,
    fixture_bytes,
    fixture_cases,
    sse_reply,
)
from .server import aserve, serve

API_KEY = "sk-test-rosetta"
USER_HI: list[Any] = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["location", "unit"],
        },
    },
}
STREAM_CASES = sorted(p.name.removesuffix(".stream.sse") for p in FIXTURES_DIR.glob("*.stream.sse"))
RESPONSE_CASES = sorted(p.name.removesuffix(".response.json") for p in FIXTURES_DIR.glob("*.response.json"))
OPENAI_STYLE = {
    "text",
    "text_cached",
    "tool_call",
    "parallel_tool_calls",
    "text_then_tool",
    "refusal",
    "length",
    "content_filter",
    "error_midstream",
    "crlf",
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeChat, str]]:
    """One fake and one server for the module: starting uvicorn per test would dominate the runtime."""
    fake = create_fake_chat(api_key=API_KEY)
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeChat, str]) -> Iterator[FakeChat]:
    """The shared fake, emptied before and restored after each test."""
    fake = served[0]
    scenarios, chunk_size = dict(fake.scenarios), fake.chunk_size
    fake.reset()
    yield fake
    fake.scenarios, fake.chunk_size = scenarios, chunk_size


@pytest.fixture
def base_url(served: tuple[FakeChat, str], fake: FakeChat) -> str:
    return served[1]


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


def sse_payloads(raw: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (either line ending)."""
    text = raw.decode().replace("\r\n", "\n")
    assert text.endswith("\n\n"), "an SSE body ends with a blank line"
    frames = text[:-2].split("\n\n")
    assert all(f.startswith("data: ") and "\n" not in f for f in frames), "one data line per frame, no events"
    return [f.removeprefix("data: ") for f in frames]


# --------------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("case", STREAM_CASES)
def test_stream_fixture_is_valid_chat_completions_sse(case: str) -> None:
    """Each chunk parses as the SDK's ChatCompletionChunk and keeps id/created/model constant."""
    raw = fixture_bytes(f"{case}.stream.sse")
    payloads = sse_payloads(raw)
    if case == "crlf":
        assert b"\r\n\r\n" in raw and b"\n\n" not in raw.replace(b"\r\n", b"")
    if case == "error_midstream":
        assert json.loads(payloads[-1])["error"]["type"] == "server_error"
        payloads = payloads[:-1]
    else:
        assert payloads[-1] == "[DONE]"
        payloads = payloads[:-1]
    chunks = [json.loads(p) for p in payloads]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk, strict=False)
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    if case in OPENAI_STYLE:  # recorded with include_usage: null usage everywhere, then a usage chunk
        with_choices = [c for c in chunks if c["choices"]]
        assert all(c["usage"] is None and "obfuscation" in c for c in with_choices)
        usage_chunks = [c for c in chunks if not c["choices"]]
        if case == "error_midstream":
            assert usage_chunks == [], "the stream broke before usage"
        else:
            assert usage_chunks == [chunks[-1]] and chunks[-1]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("case", RESPONSE_CASES)
def test_response_fixture_matches_its_stream(case: str) -> None:
    """The non-streaming body is a valid ChatCompletion carrying what the stream's deltas add up to."""
    completion = ChatCompletion.model_validate_json(fixture_bytes(f"{case}.response.json"))
    message = completion.choices[0].message
    content, refusal = "", ""
    args: dict[int, str] = {}
    reasoning = ""
    finish = None
    for payload in sse_payloads(fixture_bytes(f"{case}.stream.sse"))[:-1]:
        chunk = json.loads(payload)
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            refusal += delta.get("refusal") or ""
            reasoning += delta.get("reasoning") or delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                args[call["index"]] = args.get(call["index"], "") + call["function"].get("arguments", "")
            finish = choice["finish_reason"] or finish
    assert (message.content or "") == content
    assert (message.refusal or "") == refusal
    assert [c.function.arguments for c in message.tool_calls or [] if c.type == "function"] == list(
        args.values()
    )
    assert completion.choices[0].finish_reason == finish
    extra = message.model_extra or {}
    assert (extra.get("reasoning") or extra.get("reasoning_content") or "") == reasoning


def test_openai_call_ids_are_24_alphanumerics_after_call() -> None:
    for case in STREAM_CASES:
        text = (FIXTURES_DIR / f"{case}.stream.sse").read_text()
        for call_id in re.findall(r'"id":"(call_[^"]*)"', text):
            assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call_id), (case, call_id)


def test_pieces_cover_the_body_in_bounded_sizes() -> None:
    fake = create_fake_chat(chunk_size=(1, 7), seed=3)
    body = fixture_bytes("text.stream.sse")
    pieces = list(fake.pieces(body, 0))
    assert b"".join(pieces) == body
    assert all(1 <= len(p) <= 7 for p in pieces)
    assert pieces == list(fake.pieces(body, 0)), "deterministic for a given seed and request"


# --------------------------------------------------------------------------------------------- via the SDK


@pytest.mark.parametrize("case", RESPONSE_CASES)
async def test_sdk_reads_every_non_streaming_case(
    client: openai.AsyncOpenAI, fake: FakeChat, case: str
) -> None:
    completion = await client.chat.completions.create(model=f"fake-{case}", messages=USER_HI)
    expected = ChatCompletion.model_validate_json(fixture_bytes(f"{case}.response.json"))
    assert completion == expected
    request = fake.last_request
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body == {"model": f"fake-{case}", "messages": USER_HI}


@pytest.mark.parametrize("case", [c for c in STREAM_CASES if c != "error_midstream"])
async def test_sdk_reads_every_streaming_case(client: openai.AsyncOpenAI, fake: FakeChat, case: str) -> None:
    stream = await client.chat.completions.create(
        model=f"fake-{case}",
        messages=USER_HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].total_tokens > 0
    assert fake.last_request.stream and fake.last_request.include_usage


async def test_streamed_text_and_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake-text",
        messages=USER_HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert (text, finish) == ("Hello there, friend!", "stop")
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (13, 6)


async def test_fixture_bytes_arrive_unchanged_despite_small_writes(fake: FakeChat, base_url: str) -> None:
    fake.chunk_size = (1, 3)
    body = {"model": "fake-reasoning_llamacpp", "messages": USER_HI, "stream": True}
    async with httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"}) as http:
        async with http.stream("POST", "/chat/completions", json=body) as response:
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["server"] == "llama.cpp"
            received = [piece async for piece in response.aiter_raw()]
    assert b"".join(received) == fixture_bytes("reasoning_llamacpp.stream.sse")
    assert len(received) > 1


async def test_agent_calls_the_first_tool_then_reports_its_answer(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake-agent",
        messages=USER_HI,
        tools=[WEATHER_TOOL],
        stream=True,
    )
    call_id, name, arguments, finish = "", "", "", None
    async for chunk in stream:
        assert chunk.usage is None, "no usage without stream_options.include_usage"
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                call_id = call.id or call_id
                name = (call.function and call.function.name) or name
                arguments += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call_id)
    assert (name, json.loads(arguments), finish) == (
        "get_weather",
        {"location": "Paris", "unit": "c"},
        "tool_calls",
    )

    history: list[Any] = [
        *USER_HI,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": [{"type": "text", "text": "18°C and sunny"}]},
    ]
    completion = await client.chat.completions.create(
        model="fake-agent", messages=history, tools=[WEATHER_TOOL]
    )
    assert completion.choices[0].message.content == "The tool said: 18°C and sunny"
    assert completion.choices[0].finish_reason == "stop"


async def test_echo_repeats_the_last_user_message(client: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "this back"}],
        },
    ]
    stream = await client.chat.completions.create(model="fake-echo", messages=messages, stream=True)
    deltas = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert deltas == ["Say ", "this ", "back"]


@pytest.mark.parametrize(
    ("model", "error", "status", "code"),
    [
        ("fake-error-400", openai.BadRequestError, 400, "context_length_exceeded"),
        ("fake-error-400-flat", openai.BadRequestError, 400, "400"),  # the SDK stringifies vLLM's int code
        ("fake-error-401", openai.AuthenticationError, 401, "invalid_api_key"),
        ("fake-error-429", openai.RateLimitError, 429, "rate_limit_exceeded"),
        ("fake-error-500", openai.InternalServerError, 500, None),
        ("fake-error-503", openai.InternalServerError, 503, None),
    ],
)
async def test_error_models(
    client: openai.AsyncOpenAI, model: str, error: type[openai.APIStatusError], status: int, code: str | None
) -> None:
    with pytest.raises(error) as caught:
        await client.chat.completions.create(model=model, messages=USER_HI)
    assert caught.value.status_code == status
    assert caught.value.code == code
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


async def test_error_midstream_raises_after_the_first_deltas(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake-error_midstream",
        messages=USER_HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    with pytest.raises(openai.APIError, match="The server had an error"):
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert text == "Hello there"


async def test_wrong_key_and_unknown_model(base_url: str) -> None:
    async with openai.AsyncOpenAI(
        api_key="sk-wrong-key-123", base_url=f"{base_url}/v1", max_retries=0
    ) as sdk:
        with pytest.raises(openai.AuthenticationError, match=r"Incorrect API key provided: sk-\*+-123"):
            await sdk.chat.completions.create(model="fake-text", messages=USER_HI)
    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError, match="The model `gpt-nope` does not exist"):
            await sdk.chat.completions.create(model="gpt-nope", messages=USER_HI)


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (b"{not json", None, "We could not parse the JSON body"),
        ({"messages": USER_HI}, None, "you must provide a model parameter"),
        ({"model": "fake-text"}, "messages", "Missing required parameter: 'messages'."),
        (
            {"model": "fake-text", "messages": USER_HI, "stream_options": {"include_usage": True}},
            "stream_options",
            "only allowed when 'stream' is enabled",
        ),
        (
            {
                "model": "fake-text",
                "messages": [*USER_HI, {"role": "tool", "tool_call_id": "call_x", "content": "1"}],
            },
            "messages.[1].role",
            "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            {
                "model": "fake-text",
                "messages": [
                    *USER_HI,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_a",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            },
                            {
                                "id": "call_b",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            },
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_a", "content": "1"},
                    {"role": "user", "content": "and?"},
                ],
            },
            "messages.[1].role",
            "did not have response messages: call_b",
        ),
        (
            {
                "model": "fake-text",
                "messages": [
                    *USER_HI,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "call_" + "x" * 40,
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_" + "x" * 40, "content": "1"},
                ],
            },
            "messages[1].tool_calls[0].id",
            "Expected a string with maximum length 40, but got a string with length 45 instead.",
        ),
    ],
)
async def test_rejects_malformed_requests_like_openai(
    fake: FakeChat, base_url: str, body: Any, param: str | None, message: str
) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"}) as http:
        if isinstance(body, bytes):
            response = await http.post("/v1/chat/completions", content=body)
        else:
            response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    recorded = fake.last_request
    assert (
        (recorded.raw_body, recorded.body) == (body, None)
        if isinstance(body, bytes)
        else recorded.body == body
    )


async def test_valid_tool_history_is_accepted(client: openai.AsyncOpenAI) -> None:
    history: list[Any] = [
        *USER_HI,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "2"},
        {"role": "tool", "tool_call_id": "call_a", "content": "1"},
    ]
    completion = await client.chat.completions.create(model="fake-text", messages=history)
    assert completion.choices[0].message.content == "Hello there, friend!"


# --------------------------------------------------------------------------------------------- cancellation


async def test_hang_midstream_records_the_client_going_away(
    client: openai.AsyncOpenAI, fake: FakeChat
) -> None:
    stream = await client.chat.completions.create(
        model="fake-hang-midstream",
        messages=USER_HI,
        stream=True,
    )
    text = ""
    async for chunk in stream:
        text += chunk.choices[0].delta.content or ""
        if text == "Hello there":
            break
    assert fake.disconnects == 0
    await stream.close()
    assert await fake.until_disconnects(1)
    assert fake.last_request.disconnected


async def test_slow_model_outlasts_a_read_timeout(base_url: str, fake: FakeChat) -> None:
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=f"{base_url}/v1", max_retries=0, timeout=0.3
    ) as sdk:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="fake-slow", messages=USER_HI)
    assert await fake.until_disconnects(1)


async def test_completed_streams_are_not_counted_as_disconnects(
    client: openai.AsyncOpenAI, fake: FakeChat
) -> None:
    for _ in range(3):
        stream = await client.chat.completions.create(model="fake-text", messages=USER_HI, stream=True)
        assert [c async for c in stream]
    assert fake.disconnects == 0 and not any(r.disconnected for r in fake.requests)


# --------------------------------------------------------------------------------------------- scenarios


async def test_custom_scenarios(base_url: str, fake: FakeChat) -> None:
    seen: list[RecordedRequest] = []

    def scripted(request: RecordedRequest) -> Reply:
        seen.append(request)
        return sse_reply(fixture_bytes("refusal.stream.sse"))

    fake.scenarios.update(
        {"gpt-4o": "tool_call", "my-refuser": scripted, "teapot": Reply(418, b"short and stout")}
    )
    async with httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {API_KEY}"}) as http:
        plain = await http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER_HI})
        streamed = await http.post(
            "/v1/chat/completions", json={"model": "my-refuser", "messages": USER_HI, "stream": True}
        )
        teapot = await http.post("/v1/chat/completions", json={"model": "teapot", "messages": USER_HI})
        models = await http.get("/v1/models")
        missing = await http.post("/v1/responses", json={})
    assert plain.content == fixture_bytes("tool_call.response.json")
    assert streamed.content == fixture_bytes("refusal.stream.sse") and seen[0].model == "my-refuser"
    assert (teapot.status_code, teapot.content) == (418, b"short and stout")
    assert {"fake-agent", "gpt-4o", "fake-text"} <= {m["id"] for m in models.json()["data"]}
    assert (
        missing.status_code == 404
        and missing.json()["error"]["message"] == "Invalid URL (POST /v1/responses)"
    )


def test_every_fixture_case_has_a_model() -> None:
    fake = create_fake_chat()
    assert {f"fake-{case}" for case in fixture_cases()} <= set(fake.scenarios)
    assert {"fake-agent", "fake-echo", "fake-slow", "fake-hang-midstream", "fake-error-503"} <= set(
        fake.scenarios
    )


# --------------------------------------------------------------------------------------------- server helper


def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.url.path}")


def test_serve_runs_any_asgi_app_and_frees_the_port() -> None:
    app = Starlette(routes=[Route("/{name}", _hello)])
    with serve(app) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        with httpx.Client(base_url=url) as http:
            assert http.get("/world").text == "hello /world"
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=url) as http:
        http.get("/world")


async def test_aserve_keeps_the_callers_loop_free() -> None:
    app = Starlette(routes=[Route("/{name}", _hello)])
    async with aserve(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/async")).text == "hello /async"


def test_fixture_dir_is_where_the_readme_says() -> None:
    assert FIXTURES_DIR == Path(__file__).resolve().parent.parent / "fixtures" / "chat"
    assert (FIXTURES_DIR / "README.md").is_file()
