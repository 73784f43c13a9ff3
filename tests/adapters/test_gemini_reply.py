"""Gemini adapter, reply side: chunks → exact canonical events, signatures carried per call."""

from __future__ import annotations

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
