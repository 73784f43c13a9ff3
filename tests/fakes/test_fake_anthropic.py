"""Tests of the fake Anthropic upstream itself: its fixtures, its replies and its request validation.

Why these exist: every Anthropic adapter test trusts the fake to behave like
api.anthropic.com. The ``anthropic`` SDK is not a project dependency, so the
fake is driven with plain ``httpx`` and its bytes are checked against the wire
rules an Anthropic client relies on (``event:`` lines that name the payload
type, ``ping`` frames, no ``[DONE]``, sequential content blocks, cumulative
usage), and each validation rule is checked to answer with the 400 Anthropic
would send.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .anthropic import (
    ANTHROPIC_VERSION,
    FIXTURES_DIR,
    SAMPLING_FREE_VERSION,
    FakeAnthropic,
    RecordedRequest,
    Reply,
    create_fake_anthropic,
    fixture_bytes,
    fixture_cases,
    sse_reply,
    thinking_signature,
)
from .server import aserve, serve

API_KEY = "sk-ant-test-rosetta"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": ANTHROPIC_VERSION}
USER_HI: list[Any] = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["location", "unit"],
    },
}
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
STREAM_CASES = sorted(p.name.removesuffix(".stream.sse") for p in FIXTURES_DIR.glob("*.stream.sse"))
RESPONSE_CASES = sorted(p.name.removesuffix(".response.json") for p in FIXTURES_DIR.glob("*.response.json"))
LLAMACPP = {"llamacpp_tool_use"}
ERROR_FRAME = (
    'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
)
PING_FRAME = 'event: ping\ndata: {"type": "ping"}'


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeAnthropic, str]]:
    """One fake and one server for the module: starting uvicorn per test would dominate the runtime."""
    fake = create_fake_anthropic(api_key=API_KEY)
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeAnthropic, str]) -> Iterator[FakeAnthropic]:
    """The shared fake, emptied before and restored after each test."""
    fake = served[0]
    scenarios, chunk_size = dict(fake.scenarios), fake.chunk_size
    fake.reset()
    yield fake
    fake.scenarios, fake.chunk_size = scenarios, chunk_size


@pytest.fixture
async def http(served: tuple[FakeAnthropic, str], fake: FakeAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served[1], headers=HEADERS) as client:
        yield client


def frames(raw: bytes) -> list[str]:
    """The SSE frames of a body (Anthropic uses ``\\n`` only), checking it ends with a blank line."""
    text = raw.decode()
    assert text.endswith("\n\n"), "an SSE body ends with a blank line"
    return text[:-2].split("\n\n")


def events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of every frame, checking each has both lines and that they agree."""
    out = []
    for frame in frames(raw):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: "), frame
        event, data = event_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))
        assert data["type"] == event, "the SDK dispatches on the event line, which must match data.type"
        out.append((event, data))
    return out


def accumulate(raw: bytes) -> dict[str, Any]:
    """Rebuild the message a stream describes, the way an Anthropic client does."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for event, data in events(raw):
        if event == "message_start":
            message = dict(data["message"])
            message["content"] = []
        elif event == "content_block_start":
            assert data["index"] == len(message["content"]), "blocks open in index order"
            message["content"].append(dict(data["content_block"]))
        elif event == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif event == "content_block_stop" and data["index"] in partial:
            text = partial.pop(data["index"])
            message["content"][data["index"]]["input"] = json.loads(text) if text else {}
        elif event == "message_delta":
            message.update(data["delta"])
            message["usage"] = {**message["usage"], **data["usage"]}
    return message


def without_opaque(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks minus per-request values (ids, signatures, redacted data), to compare stream and JSON."""
    return [{k: v for k, v in b.items() if k not in ("id", "signature", "data")} for b in blocks]


async def post(
    http: httpx.AsyncClient, body: Any, path: str = "/v1/messages", **kwargs: Any
) -> httpx.Response:
    return await http.post(path, json=body, **kwargs)


def ask(model: str, messages: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 2048, "messages": messages or USER_HI, **extra}


# ----------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("case", STREAM_CASES)
def test_stream_fixture_is_anthropic_sse(case: str) -> None:
    """Event lines, one ping where api.anthropic.com puts it, sequential blocks, no [DONE]."""
    raw = fixture_bytes(f"{case}.stream.sse")
    assert b"[DONE]" not in raw and b"\r" not in raw
    names = [event for event, _ in events(raw)]
    assert names[0] == "message_start"
    start = events(raw)[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    if case == "error_midstream":
        assert frames(raw)[-1] == ERROR_FRAME and "message_stop" not in names
    else:
        assert names[-2:] == ["message_delta", "message_stop"]
    if case in LLAMACPP:
        assert "ping" not in names
    else:
        assert frames(raw).count(PING_FRAME) == 1 and names.index("ping") == 2, (
            "ping after the first block opens"
        )
        opened = [d["index"] for e, d in events(raw) if e == "content_block_start"]
        closed = [d["index"] for e, d in events(raw) if e == "content_block_stop"]
        assert opened == list(range(len(opened)))
        assert closed == (opened[:-1] if case == "error_midstream" else opened)
        open_block = None
        for event, data in events(raw):  # blocks are strictly sequential, never interleaved
            if event == "content_block_start":
                assert open_block is None
                open_block = data["index"]
            elif event in ("content_block_delta", "content_block_stop"):
                assert data["index"] == open_block
                open_block = None if event == "content_block_stop" else open_block


@pytest.mark.parametrize("case", RESPONSE_CASES)
def test_response_fixture_matches_its_stream(case: str) -> None:
    """The non-streaming body carries what the stream's events add up to."""
    streamed = accumulate(fixture_bytes(f"{case}.stream.sse"))
    message = json.loads(fixture_bytes(f"{case}.response.json"))
    assert (message["type"], message["role"]) == ("message", "assistant")
    assert without_opaque(message["content"]) == without_opaque(streamed["content"])
    assert message["stop_reason"] == streamed["stop_reason"] and message["stop_reason"] is not None
    assert message["usage"]["output_tokens"] == streamed["usage"]["output_tokens"]
    assert message["usage"]["input_tokens"] == streamed["usage"]["input_tokens"]
    assert message["id"] != streamed["id"], "the JSON body stands for a different request"
    assert not fixture_bytes(f"{case}.response.json").endswith(b"\n"), "compact, no trailing newline"


def test_claude_frames_are_padded_like_the_real_api() -> None:
    """api.anthropic.com pads data JSON with spaces before its last brace; parsers must not mind."""
    for case in set(STREAM_CASES) - LLAMACPP:
        data_lines = [f.split("\n")[1] for f in frames(fixture_bytes(f"{case}.stream.sse"))]
        assert any(line.endswith(" }") for line in data_lines), case


def test_text_case_spells_its_greeting_and_usage() -> None:
    message = accumulate(fixture_bytes("text.stream.sse"))
    assert [b["text"] for b in message["content"]] == ["Hello there, friend!"]
    deltas = [d for e, d in events(fixture_bytes("text.stream.sse")) if e == "content_block_delta"]
    assert len(deltas) >= 3
    usage = message["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], message["stop_reason"]) == (13, 6, "end_turn")
    assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0


def test_cached_usage_counts_cache_outside_input_tokens() -> None:
    for usage in (
        accumulate(fixture_bytes("cached_usage.stream.sse"))["usage"],
        json.loads(fixture_bytes("cached_usage.response.json"))["usage"],
    ):
        counts = [
            usage[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        assert [*counts, usage["output_tokens"]] == [5, 100, 900, 7]


@pytest.mark.parametrize("case", ["tool_use", "parallel_tool_use", "thinking_tool_use", "empty_tool_input"])
def test_tool_input_streams_from_an_empty_fragment(case: str) -> None:
    raw = fixture_bytes(f"{case}.stream.sse")
    starts = {d["index"]: d["content_block"] for e, d in events(raw) if e == "content_block_start"}
    tool_blocks = [i for i, block in starts.items() if block["type"] == "tool_use"]
    assert tool_blocks
    for index in tool_blocks:
        assert starts[index]["input"] == {} and re.fullmatch(
            r"toolu_01[1-9A-HJ-NP-Za-km-z]{22}", starts[index]["id"]
        )
        fragments = [
            d["delta"]["partial_json"]
            for e, d in events(raw)
            if e == "content_block_delta" and d["index"] == index
        ]
        assert fragments[0] == ""
    message = accumulate(raw)
    assert message["stop_reason"] == "tool_use"
    inputs = [b["input"] for b in message["content"] if b["type"] == "tool_use"]
    expected = {
        "tool_use": [{"location": "Paris"}],
        "parallel_tool_use": [{"location": "Paris"}, {"location": "Tokyo"}],
        "thinking_tool_use": [{"location": "Paris"}],
        "empty_tool_input": [{}],
    }
    assert inputs == expected[case]


@pytest.mark.parametrize("case", ["thinking_tool_use", "thinking_text"])
def test_thinking_ends_with_exactly_one_signature(case: str) -> None:
    raw = fixture_bytes(f"{case}.stream.sse")
    on_block = [(e, d) for e, d in events(raw) if d.get("index") == 0]
    kinds = [d["delta"]["type"] for e, d in on_block if e == "content_block_delta"]
    assert kinds[-1] == "signature_delta" and kinds.count("signature_delta") == 1 and len(kinds) > 2
    assert on_block[0][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    signature = accumulate(raw)["content"][0]["signature"]
    assert len(signature) > 200 and re.fullmatch(r"E[A-Za-z0-9+/]+={0,2}", signature)


def test_redacted_thinking_arrives_whole_in_its_start_event() -> None:
    raw = fixture_bytes("redacted_thinking.stream.sse")
    first = [d for e, d in events(raw) if d.get("index") == 0]
    assert [d["type"] for d in first] == ["content_block_start", "content_block_stop"]
    assert (
        first[0]["content_block"]["type"] == "redacted_thinking"
        and len(first[0]["content_block"]["data"]) > 200
    )


@pytest.mark.parametrize(
    ("case", "stop_reason"),
    [("max_tokens", "max_tokens"), ("refusal", "refusal"), ("pause_turn", "pause_turn")],
)
def test_stop_reasons(case: str, stop_reason: str) -> None:
    message = accumulate(fixture_bytes(f"{case}.stream.sse"))
    assert message["stop_reason"] == stop_reason and message["content"][0]["text"]


def test_llamacpp_quirks() -> None:
    """No ping, a tool_use start without ``input``, and every block closed only at the end."""
    raw = fixture_bytes("llamacpp_tool_use.stream.sse")
    names = [e for e, _ in events(raw)]
    tool_start = next(d for e, d in events(raw) if e == "content_block_start" and d["index"] == 1)
    assert "input" not in tool_start["content_block"] and re.fullmatch(
        r"[A-Za-z0-9]{32}", tool_start["content_block"]["id"]
    )
    assert names.index("content_block_stop") > names.index("content_block_start", 2)
    assert accumulate(raw)["content"][1]["input"] == {"location": "Paris"}
    assert not any(line.endswith(" }") for line in (f.split("\n")[1] for f in frames(raw))), "no padding"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("error_400.json", "invalid_request_error"),
        ("error_401.json", "authentication_error"),
        ("error_429.json", "rate_limit_error"),
        ("error_500.json", "api_error"),
        ("error_529.json", "overloaded_error"),
    ],
)
def test_error_bodies(name: str, kind: str) -> None:
    body = json.loads(fixture_bytes(name))
    assert body["type"] == "error" and body["error"]["type"] == kind and body["error"]["message"]
    assert re.fullmatch(r"req_011C[1-9A-HJ-NP-Za-km-z]{20}", body["request_id"])


def test_pieces_cover_the_body_in_bounded_sizes() -> None:
    fake = create_fake_anthropic(chunk_size=(1, 7), seed=3)
    body = fixture_bytes("thinking_tool_use.stream.sse")
    pieces = list(fake.pieces(body, 0))
    assert b"".join(pieces) == body and all(1 <= len(p) <= 7 for p in pieces)
    assert pieces == list(fake.pieces(body, 0)), "deterministic for a given seed and request"


def test_thinking_signature_is_deterministic_and_text_bound() -> None:
    signature = thinking_signature("I will call get_weather.")
    assert signature == thinking_signature("I will call get_weather.")
    assert signature != thinking_signature("I will call get_weather!")
    assert signature != thinking_signature("I will call get_weather.", b"another key")
    assert len(signature) > 200 and signature.startswith("E")


# ----------------------------------------------------------------------------------------- replay over HTTP


@pytest.mark.parametrize("case", STREAM_CASES)
async def test_stream_cases_arrive_byte_for_byte_in_small_writes(
    http: httpx.AsyncClient, fake: FakeAnthropic, case: str
) -> None:
    fake.chunk_size = (1, 5)
    async with http.stream("POST", "/v1/messages", json=ask(f"fake-{case}", stream=True)) as response:
        assert response.status_code == 200
        received = [piece async for piece in response.aiter_raw()]
    assert b"".join(received) == fixture_bytes(f"{case}.stream.sse") and len(received) > 1
    if case in LLAMACPP:
        assert (response.headers["content-type"], response.headers["server"]) == (
            "text/event-stream",
            "llama.cpp",
        )
    else:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert re.fullmatch(r"req_011C\w{20}", response.headers["request-id"])
    assert fake.last_request.stream and fake.last_request.headers["x-api-key"] == API_KEY


@pytest.mark.parametrize("case", RESPONSE_CASES)
async def test_json_cases(http: httpx.AsyncClient, case: str) -> None:
    response = await post(http, ask(f"fake-{case}"))
    assert response.status_code == 200 and response.content == fixture_bytes(f"{case}.response.json")
    expected = "application/json; charset=utf-8" if case in LLAMACPP else "application/json"
    assert response.headers["content-type"] == expected


async def test_requests_are_recorded_before_validation(http: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    await http.post("/v1/messages", content=b"{not json", headers={"anthropic-beta": "a,b"})
    await post(http, ask("fake-text"))
    first, second = fake.requests
    assert (first.raw_body, first.body, first.headers["anthropic-beta"]) == (b"{not json", None, "a,b")
    assert second.body == ask("fake-text") and second.model == "fake-text" and not second.stream
    assert fake.last_request is second


# ----------------------------------------------------------------------------------------- scripted models


async def test_agent_calls_the_first_tool_then_reports_its_answer(http: httpx.AsyncClient) -> None:
    response = await post(http, ask("fake-agent", tools=[WEATHER_TOOL], stream=True))
    message = accumulate(response.content)
    assert PING_FRAME in frames(response.content)
    [call] = message["content"]
    assert (call["type"], call["name"], call["input"], message["stop_reason"]) == (
        "tool_use",
        "get_weather",
        {"location": "Paris", "unit": "c"},
        "tool_use",
    )
    assert re.fullmatch(r"toolu_01\w{22}", call["id"])

    history = [
        *USER_HI,
        {"role": "assistant", "content": message["content"]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": [{"type": "text", "text": "18°C"}],
                }
            ],
        },
    ]
    response = await post(http, ask("fake-agent", history, tools=[WEATHER_TOOL]))
    reply = response.json()
    assert reply["content"] == [{"type": "text", "text": "The tool said: 18°C"}]
    assert (reply["stop_reason"], reply["usage"]["cache_read_input_tokens"]) == ("end_turn", 0)


async def test_agent_without_tools_says_so(http: httpx.AsyncClient) -> None:
    for body in (ask("fake-agent"), ask("fake-agent", tools=[WEATHER_TOOL], tool_choice={"type": "none"})):
        response = await post(http, body)
        assert response.json()["content"] == [{"type": "text", "text": "I have no tool to call."}]


async def test_echo_repeats_the_last_user_message(http: httpx.AsyncClient) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "this back"}]}
    ]
    response = await post(http, ask("fake-echo", messages, stream=True, system="Be brief."))
    deltas = [d["delta"]["text"] for e, d in events(response.content) if e == "content_block_delta"]
    assert deltas == ["Say ", "this ", "back"]


async def test_thinking_agent_round_trip(http: httpx.AsyncClient) -> None:
    """The thinking block it issues is accepted when sent back unchanged before the tool call."""
    response = await post(
        http, ask("fake-thinking-agent", tools=[WEATHER_TOOL], thinking=THINKING, stream=True)
    )
    message = accumulate(response.content)
    thinking, call = message["content"]
    assert thinking["type"] == "thinking" and thinking["signature"] == thinking_signature(
        thinking["thinking"]
    )
    assert call["type"] == "tool_use"
    result = {"type": "tool_result", "tool_use_id": call["id"], "content": "18°C"}
    history = [
        *USER_HI,
        {"role": "assistant", "content": message["content"]},
        {"role": "user", "content": [result]},
    ]
    response = await post(http, ask("fake-thinking-agent", history, tools=[WEATHER_TOOL], thinking=THINKING))
    assert response.status_code == 200
    reply = response.json()
    assert [b["type"] for b in reply["content"]] == ["thinking", "text"]
    assert reply["content"][1]["text"] == "The tool said: 18°C"


async def _thinking_history(http: httpx.AsyncClient) -> list[Any]:
    response = await post(http, ask("fake-thinking-agent", tools=[WEATHER_TOOL], thinking=THINKING))
    content = response.json()["content"]
    result = {"type": "tool_result", "tool_use_id": content[1]["id"], "content": "18°C"}
    return [*USER_HI, {"role": "assistant", "content": content}, {"role": "user", "content": [result]}]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda content: content[1:],
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
            "When `thinking` is enabled, a final `assistant` message must start with a thinking block",
        ),
        (
            lambda content: [{**content[0], "signature": content[0]["signature"][:-4] + "AAA="}, content[1]],
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (
            lambda content: [{**content[0], "thinking": content[0]["thinking"] + " "}, content[1]],
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (
            lambda content: [content[1], content[0]],
            "Expected `thinking` or `redacted_thinking`, but found `tool_use`",
        ),
    ],
)
async def test_thinking_agent_rejects_a_lost_or_edited_thinking_block(
    http: httpx.AsyncClient, tamper: Any, message: str
) -> None:
    history = await _thinking_history(http)
    history[1] = {"role": "assistant", "content": tamper(history[1]["content"])}
    response = await post(http, ask("fake-thinking-agent", history, tools=[WEATHER_TOOL], thinking=THINKING))
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "fake-thinking-agent only runs with extended thinking enabled"),
        ({"thinking": {"type": "disabled"}}, "fake-thinking-agent only runs with extended thinking enabled"),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 512}},
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}},
            "`max_tokens` must be greater than `thinking.budget_tokens`",
        ),
    ],
)
async def test_thinking_agent_requires_a_valid_thinking_budget(
    http: httpx.AsyncClient, extra: dict[str, Any], message: str
) -> None:
    response = await post(http, ask("fake-thinking-agent", **extra))
    assert response.status_code == 400 and message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("model", "status", "kind"),
    [
        ("fake-error-400", 400, "invalid_request_error"),
        ("fake-error-401", 401, "authentication_error"),
        ("fake-error-429", 429, "rate_limit_error"),
        ("fake-error-500", 500, "api_error"),
        ("fake-error-529", 529, "overloaded_error"),
    ],
)
async def test_error_models(http: httpx.AsyncClient, model: str, status: int, kind: str) -> None:
    response = await post(http, ask(model, stream=True))
    assert response.status_code == status and response.json()["error"]["type"] == kind
    assert response.headers["request-id"] == response.json()["request_id"]
    assert response.headers.get("retry-after") == ("7" if status == 429 else None)


async def test_count_tokens(http: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    short = await post(http, {"model": "any", "messages": USER_HI}, "/v1/messages/count_tokens")
    long = await post(
        http,
        {"model": "any", "messages": [{"role": "user", "content": "word " * 400}], "tools": [WEATHER_TOOL]},
        "/v1/messages/count_tokens",
    )
    assert short.status_code == long.status_code == 200
    assert (
        set(short.json()) == {"input_tokens"}
        and 0 < short.json()["input_tokens"] < long.json()["input_tokens"]
    )
    invalid = await post(http, {"model": "any", "messages": []}, "/v1/messages/count_tokens")
    assert invalid.status_code == 400
    assert fake.requests[0].path == "/v1/messages/count_tokens"


async def test_unknown_model_and_path(http: httpx.AsyncClient) -> None:
    missing = await post(http, ask("claude-nope"))
    assert missing.status_code == 404 and missing.json()["error"] == {
        "type": "not_found_error",
        "message": "model: claude-nope",
    }
    wrong_path = await post(http, {}, "/v1/complete")
    assert wrong_path.status_code == 404 and wrong_path.json()["error"]["type"] == "not_found_error"


async def test_models_listing(http: httpx.AsyncClient) -> None:
    listing = (await http.get("/v1/models")).json()
    ids = {model["id"] for model in listing["data"]}
    assert {"fake-text", "fake-agent", "fake-thinking-agent", "fake-error-529"} <= ids
    assert listing["has_more"] is False and listing["data"][0]["type"] == "model"


async def test_custom_scenarios(http: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    seen: list[RecordedRequest] = []

    def scripted(request: RecordedRequest) -> Reply:
        seen.append(request)
        return sse_reply(fixture_bytes("refusal.stream.sse"))

    fake.scenarios.update(
        {"claude-sonnet-4-5": "tool_use", "my-refuser": scripted, "teapot": Reply(418, b"short and stout")}
    )
    plain = await post(http, ask("claude-sonnet-4-5"))
    streamed = await post(http, ask("my-refuser", stream=True))
    teapot = await post(http, ask("teapot"))
    assert plain.content == fixture_bytes("tool_use.response.json")
    assert streamed.content == fixture_bytes("refusal.stream.sse") and seen[0].model == "my-refuser"
    assert (teapot.status_code, teapot.content) == (418, b"short and stout")


def test_every_fixture_case_has_a_model() -> None:
    fake = create_fake_anthropic()
    assert {f"fake-{case}" for case in fixture_cases()} <= set(fake.scenarios)
    scripted = {"fake-agent", "fake-thinking-agent", "fake-echo", "fake-slow", "fake-hang-midstream"}
    assert scripted | {f"fake-error-{code}" for code in (400, 401, 429, 500, 529)} <= set(fake.scenarios)


def test_fixture_dir_is_where_the_readme_says() -> None:
    assert FIXTURES_DIR == Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"
    assert (FIXTURES_DIR / "README.md").is_file()


# ----------------------------------------------------------------------------------------- validation


def _tool_turns(*results: dict[str, Any], text_first: bool = False) -> list[Any]:
    """A conversation where the assistant called ``toolu_a`` and ``toolu_b``, answered by ``results``."""
    calls = [
        {"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"location": "Paris"}}
        for tool_id in ("toolu_a", "toolu_b")
    ]
    answer: list[Any] = [{"type": "text", "text": "Thanks."}] if text_first else []
    return [
        *USER_HI,
        {"role": "assistant", "content": calls},
        {"role": "user", "content": [*answer, *results]},
    ]


def _result(tool_id: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": "18°C"}


UNANSWERED = (
    "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: {ids}. "
    "Each `tool_use` block must have a corresponding `tool_result` block in the next message."
)

INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("no max_tokens", {"model": "fake-text", "messages": USER_HI}, "max_tokens: Field required"),
    ("no messages", {"model": "fake-text", "max_tokens": 10}, "messages: Field required"),
    ("empty messages", ask("fake-text", []) | {"messages": []}, "messages: at least one message is required"),
    (
        "assistant first",
        ask("fake-text", [{"role": "assistant", "content": "Hi"}, *USER_HI]),
        'messages: first message must use the "user" role',
    ),
    (
        "system role",
        ask("fake-text", [{"role": "system", "content": "Be brief."}, *USER_HI]),
        'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
        'not "system" as an input message role.',
    ),
    (
        "tool role",
        ask("fake-text", [*USER_HI, {"role": "tool", "content": "1"}]),
        "messages.1.role: Input should be 'user' or 'assistant'",
    ),
    (
        "empty string content",
        ask("fake-text", [{"role": "user", "content": ""}]),
        "messages.0: all messages must have non-empty content except for the optional final assistant "
        "message",
    ),
    (
        "empty text block",
        ask("fake-text", [{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "messages: text content blocks must be non-empty",
    ),
    (
        "whitespace text block",
        ask("fake-text", [{"role": "user", "content": [{"type": "text", "text": " \n "}]}]),
        "messages: text content blocks must contain non-whitespace text",
    ),
    (
        "whitespace string",
        ask("fake-text", [{"role": "user", "content": "   "}]),
        "messages: text content blocks must contain non-whitespace text",
    ),
    (
        "empty text inside a tool result",
        ask(
            "fake-text",
            _tool_turns(
                _result("toolu_a"), {**_result("toolu_b"), "content": [{"type": "text", "text": ""}]}
            ),
        ),
        "messages: text content blocks must be non-empty",
    ),
    (
        "trailing whitespace in a prefill",
        ask("fake-text", [*USER_HI, {"role": "assistant", "content": "Sure, "}]),
        "messages: final assistant content cannot end with trailing whitespace",
    ),
    (
        "orphan tool_result",
        ask("fake-text", [{"role": "user", "content": [_result("toolu_x")]}]),
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_x. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
    ),
    (
        "result for an unknown call",
        ask("fake-text", _tool_turns(_result("toolu_a"), _result("toolu_b"), _result("toolu_c"))),
        "messages.2.content.2: unexpected `tool_use_id` found in `tool_result` blocks: toolu_c.",
    ),
    (
        "unanswered tool_use",
        ask("fake-text", _tool_turns(_result("toolu_a"))),
        UNANSWERED.format(ids="toolu_b"),
    ),
    (
        "tool_use left open at the end",
        ask("fake-text", _tool_turns()[:2]),
        UNANSWERED.format(ids="toolu_a, toolu_b"),
    ),
    (
        "text before the tool results",
        ask("fake-text", _tool_turns(_result("toolu_a"), _result("toolu_b"), text_first=True)),
        UNANSWERED.format(ids="toolu_a, toolu_b"),
    ),
    (
        "results a turn too late",
        ask("fake-text", [*_tool_turns()[:2], *USER_HI, {"role": "user", "content": [_result("toolu_a")]}]),
        UNANSWERED.format(ids="toolu_a, toolu_b"),
    ),
    (
        "tool_use id with a dot",
        ask(
            "fake-text",
            [
                *USER_HI,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "call.1", "name": "f", "input": {}}],
                },
            ],
        ),
        "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
    ),
    (
        "tool_result id with a colon",
        ask("fake-text", [{"role": "user", "content": [_result("fc:1")]}]),
        "messages.0.content.0.tool_result.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'",
    ),
    (
        "duplicate tool_use ids",
        ask(
            "fake-text",
            [
                *USER_HI,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}}] * 2,
                },
                {"role": "user", "content": [_result("toolu_a")]},
            ],
        ),
        "messages: `tool_use` ids must be unique",
    ),
    (
        "tool_use input as a string",
        ask(
            "fake-text",
            [
                *USER_HI,
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}],
                },
            ],
        ),
        "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
    ),
    (
        "tool name with a dot",
        ask("fake-text", tools=[{**WEATHER_TOOL, "name": "weather.get"}]),
        "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    (
        "array input_schema",
        ask("fake-text", tools=[{**WEATHER_TOOL, "input_schema": {"type": "array"}}]),
        "tools.0.custom.input_schema.type: Input should be 'object'",
    ),
    (
        "duplicate tool names",
        ask("fake-text", tools=[WEATHER_TOOL, WEATHER_TOOL]),
        "tools: Tool names must be unique.",
    ),
    (
        "forced tool with thinking",
        ask("fake-text", tools=[WEATHER_TOOL], thinking=THINKING, tool_choice={"type": "any"}),
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "named tool with thinking",
        ask(
            "fake-text",
            tools=[WEATHER_TOOL],
            thinking=THINKING,
            tool_choice={"type": "tool", "name": "get_weather"},
        ),
        "Thinking may not be enabled when tool_choice forces tool use.",
    ),
    (
        "thinking budget below 1024",
        ask("fake-text", thinking={"type": "enabled", "budget_tokens": 1000}),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
    ),
    (
        "thinking budget not below max_tokens",
        ask("fake-text", thinking={"type": "enabled", "budget_tokens": 2048}),
        "`max_tokens` must be greater than `thinking.budget_tokens`.",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), [case[1:] for case in INVALID_BODIES], ids=[c[0] for c in INVALID_BODIES]
)
async def test_rejects_malformed_requests_like_anthropic(
    http: httpx.AsyncClient, fake: FakeAnthropic, body: dict[str, Any], message: str
) -> None:
    response = await post(http, body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(message), error["error"]["message"]
    assert error["request_id"] == response.headers["request-id"]
    assert fake.last_request.body == body


@pytest.mark.parametrize("field", ["temperature", "top_p", "top_k"])
async def test_sampling_is_refused_under_the_2026_version_only(http: httpx.AsyncClient, field: str) -> None:
    body = {**ask("fake-text"), field: 1}
    refused = await post(http, body, headers={"anthropic-version": SAMPLING_FREE_VERSION})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == f"{field}: Extra inputs are not permitted"
    assert (await post(http, body)).status_code == 200
    assert (
        await post(http, ask("fake-text"), headers={"anthropic-version": SAMPLING_FREE_VERSION})
    ).is_success


async def test_headers_are_checked_before_the_body(
    served: tuple[FakeAnthropic, str], fake: FakeAnthropic
) -> None:
    async with httpx.AsyncClient(base_url=served[1]) as bare:
        no_key = await bare.post("/v1/messages", json={}, headers={"anthropic-version": ANTHROPIC_VERSION})
        wrong_key = await bare.post("/v1/messages", json={}, headers={**HEADERS, "x-api-key": "sk-ant-wrong"})
        no_version = await bare.post("/v1/messages", json={}, headers={"x-api-key": API_KEY})
        bearer = await bare.post(
            "/v1/messages",
            json=ask("fake-text"),
            headers={"authorization": f"Bearer {API_KEY}", "anthropic-version": SAMPLING_FREE_VERSION},
        )
        not_json = await bare.post("/v1/messages", content=b"{oops", headers=HEADERS)
    assert (no_key.status_code, no_key.json()["error"]) == (
        401,
        {"type": "authentication_error", "message": "x-api-key header is required"},
    )
    assert (wrong_key.status_code, wrong_key.json()["error"]["message"]) == (401, "invalid x-api-key")
    assert (no_version.status_code, no_version.json()["error"]["message"]) == (
        400,
        "anthropic-version: header is required",
    )
    assert bearer.status_code == 200, "SDK 2.x sends the key as a bearer token"
    assert not_json.status_code == 400 and not_json.json()["error"]["type"] == "invalid_request_error"


async def test_valid_conversations_are_accepted(http: httpx.AsyncClient) -> None:
    """Rules are not over-strict: merged same-role turns, text after results, a prefill, system blocks."""
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "user", "content": [{"type": "text", "text": "In Paris and Tokyo."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}]},
        {"role": "assistant", "content": _tool_turns()[1]["content"]},
        {
            "role": "user",
            "content": [_result("toolu_b"), _result("toolu_a"), {"type": "text", "text": "Go on."}],
        },
        {"role": "assistant", "content": "It is"},
    ]
    body = ask("fake-text", history, system=[{"type": "text", "text": "Be brief."}], tools=[WEATHER_TOOL])
    body |= {"temperature": 0.2, "tool_choice": {"type": "auto"}, "thinking": {"type": "disabled"}}
    response = await post(http, body)
    assert response.status_code == 200, response.text
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    thinking_auto = ask("fake-text", tools=[server_tool], thinking=THINKING, tool_choice={"type": "auto"})
    assert (await post(http, thinking_auto)).status_code == 200


async def test_validate_false_accepts_what_anthropic_would_refuse() -> None:
    fake = create_fake_anthropic(api_key=API_KEY, validate=False)
    async with aserve(fake) as url, httpx.AsyncClient(base_url=url, headers={"x-api-key": API_KEY}) as http:
        sloppy = {
            "model": "fake-agent",
            "messages": [{"role": "system", "content": ""}],
            "tools": [WEATHER_TOOL],
        }
        agent = await post(http, sloppy)
        thinking = await post(http, ask("fake-thinking-agent"))
        unauthorised = await http.post("/v1/messages", json=sloppy, headers={"x-api-key": "nope"})
    assert agent.status_code == 200 and agent.json()["content"][0]["type"] == "tool_use"
    assert thinking.status_code == 200 and thinking.json()["content"][0]["type"] == "thinking"
    assert unauthorised.status_code == 401, "the key is still checked"


# ----------------------------------------------------------------------------------------- cancellation


async def test_hang_midstream_records_the_client_going_away(
    http: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    received = b""
    async with http.stream("POST", "/v1/messages", json=ask("fake-hang-midstream", stream=True)) as response:
        async for piece in response.aiter_raw():
            received += piece
            if received.count(b"\n\n") == 5:
                break
        assert fake.disconnects == 0
    assert accumulate(received + b'event: message_stop\ndata: {"type":"message_stop"}\n\n')["content"] == [
        {"type": "text", "text": "Hello there"}
    ]
    assert await fake.until_disconnects(1)
    assert fake.last_request.disconnected


async def test_slow_model_outlasts_a_read_timeout(http: httpx.AsyncClient, fake: FakeAnthropic) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await post(http, ask("fake-slow"), timeout=httpx.Timeout(5.0, read=0.3))
    assert await fake.until_disconnects(1)


async def test_completed_streams_are_not_counted_as_disconnects(
    http: httpx.AsyncClient, fake: FakeAnthropic
) -> None:
    for case in ("fake-text", "fake-error_midstream", "fake-agent"):
        async with http.stream("POST", "/v1/messages", json=ask(case, stream=True)) as response:
            assert [piece async for piece in response.aiter_raw()]
    assert fake.disconnects == 0 and not any(r.disconnected for r in fake.requests)
