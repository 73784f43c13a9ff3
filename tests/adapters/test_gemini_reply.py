"""Gemini adapter, reply side: chunks → exact canonical events, signatures carried per call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.gemini import build_gemini
from gateway.errors import InvalidRequest, RateLimited, UpstreamError, UpstreamRejected, UpstreamUnavailable
from gateway.sse import SSEDecoder, SSEMessage
from schemas.canonical_events import (
    ArgumentsDelta,
    CanonicalEvent,
    Failed,
    Finished,
    FunctionCallStarted,
    ItemDone,
    MessageStarted,
    ReasoningStarted,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)
from tests.helpers import canonical, counter_ids

ADAPTER = build_gemini({})
PLAIN = canonical({"input": "hi"})
USAGE = {
    "promptTokenCount": 13,
    "candidatesTokenCount": 6,
    "thoughtsTokenCount": 4,
    "cachedContentTokenCount": 3,
    "totalTokenCount": 23,
}


def chunk(parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None) -> str:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-test", "responseId": "r1"}
    if usage:
        body["usageMetadata"] = usage
    return orjson.dumps(body).decode()


def run(*chunks: str) -> list[CanonicalEvent]:
    translator = ADAPTER.open_stream(PLAIN, counter_ids())
    events: list[CanonicalEvent] = []
    for data in chunks:
        events += translator.feed(SSEMessage(data=data))
    return events + translator.finish()


def test_text_thoughts_and_final_signature() -> None:
    events = run(
        chunk([{"text": "Planning", "thought": True}]),
        chunk([{"text": "Hello"}]),
        chunk([{"text": " there", "thoughtSignature": "TXT"}], "STOP", USAGE),
    )
    assert events == [
        ReasoningStarted("reasoning"),
        SummaryDelta("reasoning", "Planning"),
        MessageStarted("message"),
        TextDelta("message", "Hello"),
        TextDelta("message", " there"),
        ItemDone("message"),
        ItemDone(
            "reasoning",
            replay={"vendor": "gemini", "model": "up-model", "calls": {}, "text_signatures": ["TXT"]},
        ),
        UsageReported(Usage(input_tokens=13, output_tokens=10, cached_tokens=3, reasoning_tokens=4)),
        Finished("stop"),
    ]


def test_parallel_calls_get_minted_ids_and_only_the_first_signature() -> None:
    events = run(
        chunk(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                    "thoughtSignature": "SIG",
                },
                {"functionCall": {"name": "get_weather", "args": {"location": "Tokyo"}, "id": "fc-2"}},
            ],
            "STOP",
        )
    )
    assert events == [
        ReasoningStarted("reasoning"),
        FunctionCallStarted("call0", "call_1", "get_weather"),
        ArgumentsDelta("call0", '{"location":"Paris"}'),
        ItemDone("call0"),
        FunctionCallStarted("call1", "fc-2", "get_weather"),
        ArgumentsDelta("call1", '{"location":"Tokyo"}'),
        ItemDone("call1"),
        ItemDone(
            "reasoning",
            replay={
                "vendor": "gemini",
                "model": "up-model",
                "calls": {
                    "call_1": {"signature": "SIG", "id": False},
                    "fc-2": {"signature": None, "id": True},
                },
                "text_signatures": [],
            },
        ),
        Finished("stop"),
    ]


def test_calls_without_signatures_need_no_reasoning_item() -> None:
    events = run(chunk([{"text": "Let me look."}, {"functionCall": {"name": "f", "args": {}}}], "STOP"))
    assert [type(e).__name__ for e in events] == [
        "MessageStarted",
        "TextDelta",
        "ItemDone",
        "FunctionCallStarted",
        "ArgumentsDelta",
        "ItemDone",
        "Finished",
    ]


@pytest.mark.parametrize(
    ("finish", "last"),
    [
        ("MAX_TOKENS", Finished("length")),
        ("SAFETY", Finished("content_filter")),
        ("RECITATION", Finished("content_filter")),
        (
            "MALFORMED_FUNCTION_CALL",
            Failed("server_error", "Gemini ended the turn with MALFORMED_FUNCTION_CALL."),
        ),
    ],
)
def test_finish_reasons(finish: str, last: CanonicalEvent) -> None:
    assert run(chunk([{"text": "x"}]), chunk([], finish))[-1] == last


def test_prompt_blocked_fails_a_stream_and_is_a_400_as_json() -> None:
    blocked = orjson.dumps(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    )
    assert run(blocked.decode())[0] == Failed(
        "invalid_prompt", "Gemini blocked the prompt (SAFETY); nothing was generated."
    )
    with pytest.raises(InvalidRequest) as info:
        ADAPTER.parse_response(blocked, PLAIN, counter_ids())
    assert info.value.code == "invalid_prompt"


def test_error_chunk_mid_stream() -> None:
    error = orjson.dumps({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}).decode()
    assert run(chunk([{"text": "x"}]), error)[-1] == Failed("unavailable", "overloaded")


def test_json_reply_is_the_same_translation() -> None:
    body = chunk([{"text": "Hello there, friend!"}], "STOP", USAGE).encode()
    assert ADAPTER.parse_response(body, PLAIN, counter_ids()) == [
        MessageStarted("message"),
        TextDelta("message", "Hello there, friend!"),
        ItemDone("message"),
        UsageReported(Usage(input_tokens=13, output_tokens=10, cached_tokens=3, reasoning_tokens=4)),
        Finished("stop"),
    ]


def test_line_separators_inside_json_do_not_split_events() -> None:
    raw = ("data: " + chunk([{"text": "a\u2028b\u2029c"}], "STOP") + "\r\n\r\n").encode()
    decoder = SSEDecoder()
    messages = decoder.feed(raw) + decoder.flush()
    translator = ADAPTER.open_stream(PLAIN, counter_ids())
    events = [e for m in messages for e in translator.feed(m)]
    assert events[1] == TextDelta("message", "a\u2028b\u2029c")


@pytest.mark.parametrize(
    ("status", "body", "kind", "expected"),
    [
        (400, {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}, UpstreamRejected, 400),
        (
            400,
            {
                "code": 400,
                "message": "API key not valid.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                ],
            },
            UpstreamError,
            502,
        ),
        (403, {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}, UpstreamError, 502),
        (429, {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}, RateLimited, 429),
        (500, {"code": 500, "message": "oops", "status": "INTERNAL"}, UpstreamError, 502),
        (503, {"code": 503, "message": "busy", "status": "UNAVAILABLE"}, UpstreamUnavailable, 503),
    ],
)
def test_vendor_errors(status: int, body: dict[str, Any], kind: type, expected: int) -> None:
    error = ADAPTER.parse_error(status, orjson.dumps({"error": body}), "3")
    assert type(error) is kind and error.status == expected


FIXTURES = Path(__file__).parents[1] / "fixtures" / "gemini"
CASES = sorted(p.name.removesuffix(".stream.sse") for p in FIXTURES.glob("*.stream.sse"))


def recorded(raw: bytes, cut: int | None = None) -> list[CanonicalEvent]:
    decoder, translator = SSEDecoder(), ADAPTER.open_stream(PLAIN, counter_ids())
    chunks = [raw] if cut is None else [raw[:cut], raw[cut:]]
    events: list[CanonicalEvent] = []
    for message in [m for piece in chunks for m in decoder.feed(piece)] + decoder.flush():
        events += translator.feed(message)
    return events + translator.finish()


@pytest.mark.parametrize("case", CASES)
def test_recorded_stream_split_at_every_byte_offset(case: str) -> None:
    raw = (FIXTURES / f"{case}.stream.sse").read_bytes()
    whole = recorded(raw)
    assert whole and isinstance(whole[-1], Finished | Failed)
    for cut in range(len(raw) + 1):
        assert recorded(raw, cut) == whole, f"split at byte {cut}"


def test_recorded_text_stream() -> None:
    events = recorded((FIXTURES / "text.stream.sse").read_bytes())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, friend!"
    assert events[-2:] == [UsageReported(Usage(input_tokens=13, output_tokens=6)), Finished("stop")]


def test_recorded_unicode_separators_survive() -> None:
    events = recorded((FIXTURES / "unicode_separator.stream.sse").read_bytes())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "\u2028" in text and "\u2029" in text


@pytest.mark.parametrize(
    "case", sorted(p.name.removesuffix(".response.json") for p in FIXTURES.glob("*.response.json"))
)
def test_recorded_json_reply_matches_its_stream(case: str) -> None:
    """The JSON recording and the stream recording of a case carry the same parts."""
    raw = (FIXTURES / f"{case}.response.json").read_bytes()
    if case == "prompt_blocked":
        with pytest.raises(InvalidRequest):
            ADAPTER.parse_response(raw, PLAIN, counter_ids())
        return
    events = ADAPTER.parse_response(raw, PLAIN, counter_ids())
    if case == "safety":  # the JSON recording was blocked before any text; the stream after some
        assert events[-1] == Finished("content_filter")
        return
    streamed = recorded((FIXTURES / f"{case}.stream.sse").read_bytes())
    assert [type(e) for e in events if not isinstance(e, TextDelta)] == [
        type(e) for e in streamed if not isinstance(e, TextDelta)
    ]
    texts = ["".join(e.text for e in evs if isinstance(e, TextDelta)) for evs in (events, streamed)]
    assert texts[0] == texts[1]
