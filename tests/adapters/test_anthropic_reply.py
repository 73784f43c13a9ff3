"""Anthropic adapter, reply side: recorded Messages bytes → exact canonical events.

Deltas are compared merged per item (the fragment boundaries are the recording's, the content is what
matters); each stream is also replayed split at every byte offset and must give identical events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.anthropic import AnthropicAdapter, build_anthropic
from adapters.anthropic.options import AnthropicOptions
from gateway.errors import (
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    VendorProtocolError,
)
from gateway.sse import SSEDecoder, SSEMessage
from schemas import canonical as c
from schemas.canonical_events import (
    ArgumentsDelta,
    CanonicalEvent,
    Failed,
    Finished,
    FunctionCallStarted,
    ItemDone,
    MessageStarted,
    ReasoningStarted,
    ReasoningTextDelta,
    RefusalDelta,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)
from tests.helpers import IDS, canonical

FIXTURES = Path(__file__).parents[1] / "fixtures" / "anthropic"
ADAPTER = AnthropicAdapter(AnthropicOptions())
PLAIN = canonical({"input": "hi"})
DELTAS = (TextDelta, ArgumentsDelta, ReasoningTextDelta, SummaryDelta, RefusalDelta)


def merged(events: list[CanonicalEvent]) -> list[CanonicalEvent]:
    out: list[CanonicalEvent] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, DELTAS) and type(last) is type(event) and last.key == event.key:
            out[-1] = type(event)(event.key, last.text + event.text)
        else:
            out.append(event)
    return out


def stream(raw: bytes, request: c.Request = PLAIN, cut: int | None = None) -> list[CanonicalEvent]:
    decoder, translator = SSEDecoder(), ADAPTER.open_stream(request, IDS)
    chunks = [raw] if cut is None else [raw[:cut], raw[cut:]]
    events: list[CanonicalEvent] = []
    for message in [m for chunk in chunks for m in decoder.feed(chunk)] + decoder.flush():
        events += translator.feed(message)
    return events + translator.finish()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def thinking_replay(case: str, kind: str = "thinking") -> dict[str, Any]:
    """The replay payload the adapter must attach: the block exactly as the recording carried it."""
    message = orjson.loads(fixture(f"{case}.response.json"))
    block = next(b for b in message["content"] if b["type"] == kind)
    return {"vendor": "anthropic", "model": "up-model", "blocks": [block]}


def test_text_and_usage() -> None:
    assert merged(stream(fixture("text.stream.sse"))) == [
        MessageStarted("b0"),
        TextDelta("b0", "Hello there, friend!"),
        UsageReported(Usage(input_tokens=13, output_tokens=6)),
        Finished("stop"),
    ]


def test_cache_reads_and_writes_count_as_input() -> None:
    usage = [e for e in stream(fixture("cached_usage.stream.sse")) if isinstance(e, UsageReported)]
    assert usage == [
        UsageReported(Usage(input_tokens=1005, output_tokens=7, cached_tokens=900, cache_write_tokens=100))
    ]


def test_text_then_tool_use_keeps_the_tool_id() -> None:
    events = merged(stream(fixture("tool_use.stream.sse")))
    assert events == [
        MessageStarted("b0"),
        TextDelta("b0", "I'll check the current weather in Paris for you."),
        ItemDone("b0"),
        FunctionCallStarted("b1", "toolu_01z1NHprmEGvBJavUVGkjsHx", "get_weather"),
        ArgumentsDelta("b1", '{"location": "Paris"}'),
        ItemDone("b1"),
        UsageReported(Usage(input_tokens=412, output_tokens=68)),
        Finished("stop"),
    ]


def test_parallel_tool_uses() -> None:
    calls = [e for e in stream(fixture("parallel_tool_use.stream.sse")) if isinstance(e, FunctionCallStarted)]
    assert [(e.key, e.call_id) for e in calls] == [
        ("b1", "toolu_017gTmsZTNvEneGTUADXxp7Q"),
        ("b2", "toolu_01EnXC82HYaaKZtp6FsgYiaY"),
    ]


def test_empty_tool_input_is_the_empty_object() -> None:
    events = stream(fixture("empty_tool_input.stream.sse"))
    assert [e for e in events if isinstance(e, ArgumentsDelta)] == [ArgumentsDelta("b0", "{}")]


def test_thinking_is_a_reasoning_item_carrying_the_signed_block() -> None:
    events = merged(stream(fixture("thinking_tool_use.stream.sse")))
    replay = thinking_replay("thinking_tool_use")
    # The stream and the JSON recording are two different calls; compare with the stream's own block.
    done = events[2]
    assert isinstance(done, ItemDone) and done.replay["blocks"][0]["type"] == "thinking"
    assert done.replay["blocks"][0]["signature"].startswith("Es0CCk")
    assert set(done.replay) == set(replay)
    assert events[:2] == [
        ReasoningStarted("b0"),
        ReasoningTextDelta("b0", done.replay["blocks"][0]["thinking"]),
    ]
    assert isinstance(events[3], FunctionCallStarted)
    assert events[-1] == Finished("stop")


def test_json_thinking_reply_replays_the_block_verbatim() -> None:
    events = ADAPTER.parse_response(fixture("thinking_tool_use.response.json"), PLAIN, IDS)
    done = next(e for e in events if isinstance(e, ItemDone) and e.replay is not None)
    assert done.replay == thinking_replay("thinking_tool_use")


def test_redacted_thinking_has_no_text_but_is_carried() -> None:
    events = merged(stream(fixture("redacted_thinking.stream.sse")))
    assert events[0] == ReasoningStarted("b0")
    assert isinstance(events[1], ItemDone) and events[1].replay["blocks"][0]["type"] == "redacted_thinking"
    assert ADAPTER.parse_response(fixture("redacted_thinking.response.json"), PLAIN, IDS)[1] == ItemDone(
        "b0", replay=thinking_replay("redacted_thinking", "redacted_thinking")
    )


def test_thinking_is_summary_text_when_a_summary_is_asked_for() -> None:
    request = canonical({"input": "hi", "reasoning": {"summary": "auto"}})
    events = merged(stream(fixture("thinking_text.stream.sse"), request))
    assert isinstance(events[1], SummaryDelta) and events[1].text.startswith("The user is greeting me.")


@pytest.mark.parametrize(
    ("case", "reason"), [("max_tokens", "length"), ("pause_turn", "stop"), ("text", "stop")]
)
def test_stop_reasons(case: str, reason: str) -> None:
    assert stream(fixture(f"{case}.stream.sse"))[-1] == Finished(reason)  # type: ignore[arg-type]
    assert ADAPTER.parse_response(fixture(f"{case}.response.json"), PLAIN, IDS)[-1] == Finished(reason)  # type: ignore[arg-type]


def test_refusal_becomes_a_refusal_part() -> None:
    events = merged(stream(fixture("refusal.stream.sse")))
    assert events[-3] == RefusalDelta("b0", "The model's safety system stopped this response.")
    assert events[-1] == Finished("stop")


def test_error_event_mid_stream_fails_the_response() -> None:
    events = stream(fixture("error_midstream.stream.sse"))
    assert events[-1] == Failed("overloaded_error", "Overloaded")


def test_llamacpp_quirks_are_accepted() -> None:
    events = merged(stream(fixture("llamacpp_tool_use.stream.sse")))
    assert [type(e).__name__ for e in events] == [
        "MessageStarted",
        "TextDelta",
        "ItemDone",
        "FunctionCallStarted",
        "ArgumentsDelta",
        "ItemDone",
        "UsageReported",
        "Finished",
    ]


def test_structured_output_tool_becomes_message_text() -> None:
    request = canonical(
        {
            "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "get_weather", "schema": {"type": "object"}}},
        }
    )
    assert merged(stream(fixture("tool_use.stream.sse"), request)) == [
        MessageStarted("b0"),
        TextDelta("b0", "I'll check the current weather in Paris for you."),
        ItemDone("b0"),
        MessageStarted("b1"),
        TextDelta("b1", '{"location": "Paris"}'),
        UsageReported(Usage(input_tokens=412, output_tokens=68)),
        Finished("stop"),
    ]


CASES = sorted(p.name.removesuffix(".stream.sse") for p in FIXTURES.glob("*.stream.sse"))


@pytest.mark.parametrize("case", CASES)
def test_split_at_every_byte_offset(case: str) -> None:
    raw = fixture(f"{case}.stream.sse")
    whole = stream(raw)
    for cut in range(0, len(raw) + 1, 1 if len(raw) < 4000 else 3):
        assert stream(raw, cut=cut) == whole, f"split at byte {cut}"


@pytest.mark.parametrize(
    ("name", "status", "kind", "code", "expected_status"),
    [
        ("error_400.json", 400, UpstreamRejected, "invalid_request_error", 400),
        ("error_401.json", 401, UpstreamError, None, 502),
        ("error_429.json", 429, RateLimited, "rate_limit_error", 429),
        ("error_500.json", 500, UpstreamError, None, 502),
        ("error_529.json", 529, UpstreamUnavailable, None, 503),
    ],
)
def test_vendor_errors(name: str, status: int, kind: type, code: str | None, expected_status: int) -> None:
    error = ADAPTER.parse_error(status, fixture(name), "7")
    assert type(error) is kind and error.status == expected_status
    if code:
        assert error.code == code


def test_unknown_events_and_blocks_are_protocol_errors() -> None:
    translator = build_anthropic({}).open_stream(PLAIN, IDS)
    with pytest.raises(VendorProtocolError):
        translator.feed(SSEMessage('{"type":"mystery"}', "mystery"))
    with pytest.raises(VendorProtocolError):
        translator.feed(
            SSEMessage('{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use"}}')
        )
    with pytest.raises(VendorProtocolError):
        translator.feed(
            SSEMessage('{"type":"content_block_delta","index":5,"delta":{"type":"text_delta","text":"x"}}')
        )
    with pytest.raises(VendorProtocolError):
        ADAPTER.parse_response(b'{"type": "error"}', PLAIN, IDS)
