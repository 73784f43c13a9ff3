"""Chat Completions adapter: exact request bodies, and recorded vendor bytes → exact canonical events.

Every recorded stream is also replayed split at every byte offset: the translator must give the same
events whatever the chunking. Fixtures: tests/fixtures/chat/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.base import UpstreamTarget
from adapters.openai_chat import PRESETS, ChatCompletionsAdapter, ChatDialect, parse_dialect
from gateway.errors import (
    RateLimited,
    UnsupportedParameter,
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

FIXTURES = Path(__file__).parents[1] / "fixtures" / "chat"
TARGET = UpstreamTarget(base_url="http://up.test/v1/", model="up-model", api_key="sk-test-123456789")
OPENAI = ChatCompletionsAdapter(PRESETS["openai"])
GENERIC = ChatCompletionsAdapter(PRESETS["generic"])


request = canonical


def sent(adapter: ChatCompletionsAdapter, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(adapter.build_request(request(body), TARGET).body)
    return result


# ---------------------------------------------------------------- requests


def test_request_line_headers_and_secret_free_repr() -> None:
    vendor = OPENAI.build_request(request({"input": "hi", "stream": True}), TARGET)
    assert (vendor.method, vendor.url, vendor.stream) == ("POST", "http://up.test/v1/chat/completions", True)
    assert vendor.headers["Authorization"] == "Bearer sk-test-123456789"
    assert "sk-test" not in repr(vendor)
    assert orjson.loads(vendor.body)["stream_options"] == {"include_usage": True}


def test_full_conversation_body_for_openai() -> None:
    body = sent(
        OPENAI,
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Weather here?"},
                        {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBE",
                            "filename": "a.pdf",
                        },
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"c":"P"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "get_weather",
                    "arguments": '{"c":"T"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "21C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "9C"}],
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "d",
                    "parameters": {"type": "object"},
                    "strict": True,
                }
            ],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "text": {
                "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True},
                "verbosity": "low",
            },
            "reasoning": {"effort": "low"},
            "max_output_tokens": 100,
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u1",
            "safety_identifier": "s1",
            "prompt_cache_key": "k1",
            "service_tier": "flex",
            "metadata": {"gateway": "only"},
            "store": False,
        },
    )
    assert body == {
        "model": "up-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"c":"P"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"c":"T"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9C"}]},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "d",
                    "parameters": {"type": "object"},
                    "strict": True,
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        "max_completion_tokens": 100,
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u1",
        "reasoning_effort": "low",
        "verbosity": "low",
        "service_tier": "flex",
        "prompt_cache_key": "k1",
        "safety_identifier": "s1",
    }


def test_compatible_dialect_differences() -> None:
    body = sent(
        ChatCompletionsAdapter(parse_dialect({"preset": "vllm", "stream_options": False})),
        {
            "input": [
                {"role": "developer", "content": "Rules."},
                {"role": "user", "content": "Q"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
                {"type": "function_call", "call_id": "call_1", "name": "a", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            ],
            "tools": [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "b"}],
            },
            "max_output_tokens": 50,
            "safety_identifier": "s1",
            "stream": True,
        },
    )
    assert body == {
        "model": "up-model",
        "messages": [
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}}
                ],
                "reasoning": "thought",
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
        "tools": [{"type": "function", "function": {"name": "b"}}],
        "tool_choice": "required",
        "max_tokens": 50,
        "user": "s1",
        "stream": True,
    }


def test_native_allowed_tools_and_named_choice() -> None:
    tools = [{"type": "function", "name": "a"}, {"type": "function", "name": "b"}]
    allowed = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "a"}]}
    assert sent(OPENAI, {"tools": tools, "tool_choice": allowed})["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "a"}}]},
    }
    named = {"type": "function", "name": "b"}
    assert sent(GENERIC, {"tools": tools, "tool_choice": named})["tool_choice"] == {
        "type": "function",
        "function": {"name": "b"},
    }
    assert sent(GENERIC, {"text": {"format": {"type": "json_object"}}})["response_format"] == {
        "type": "json_object"
    }


@pytest.mark.parametrize(
    ("adapter", "body", "param"),
    [
        (GENERIC, {"reasoning": {"effort": "high"}}, "reasoning.effort"),
        (OPENAI, {"reasoning": {"summary": "auto"}}, "reasoning.summary"),
        (GENERIC, {"text": {"verbosity": "high"}}, "verbosity"),
        (GENERIC, {"service_tier": "flex"}, "service_tier"),
        (
            GENERIC,
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            GENERIC,
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
            "input[0].content[0].file_url",
        ),
        (
            GENERIC,
            {
                "input": [
                    {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                    {
                        "type": "function_call_output",
                        "call_id": "call_1",
                        "output": [{"type": "input_image", "image_url": "https://x/a.png"}],
                    },
                ]
            },
            "input[1].output[0]",
        ),
    ],
)
def test_what_the_upstream_cannot_carry_is_rejected_by_name(
    adapter: ChatCompletionsAdapter, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(UnsupportedParameter) as info:
        adapter.build_request(request(body), TARGET)
    assert info.value.param == param
    assert info.value.status == 400


def test_dialect_options_are_validated() -> None:
    assert parse_dialect({"preset": "openai"}) == PRESETS["openai"]
    assert parse_dialect({"reasoning_field": "reasoning"}) == ChatDialect(reasoning_field="reasoning")
    with pytest.raises(ValueError, match="unknown preset"):
        parse_dialect({"preset": "nope"})
    with pytest.raises(ValueError, match="unknown flag"):
        parse_dialect({"typo": True})


# ---------------------------------------------------------------- replies and streams


def stream_events(raw: bytes, req: c.Request, cut: int | None = None) -> list[CanonicalEvent]:
    """Decode and translate a recorded stream, optionally delivered as two chunks split at `cut`."""
    decoder, translator = SSEDecoder(), GENERIC.open_stream(req, IDS)
    chunks = [raw] if cut is None else [raw[:cut], raw[cut:]]
    messages: list[SSEMessage] = [m for chunk in chunks for m in decoder.feed(chunk)] + decoder.flush()
    events: list[CanonicalEvent] = []
    for message in messages:
        events += translator.feed(message)
    return events + translator.finish()


def texts(key: str, kind: type, *parts: str) -> list[CanonicalEvent]:
    return [kind(key, p) for p in parts]


PLAIN = request({"input": "hi"})
USAGE_TEXT = UsageReported(Usage(input_tokens=13, output_tokens=6))
STREAMS: dict[str, list[CanonicalEvent]] = {
    "text": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Hello", " there", ",", " fri", "end", "!"),
        USAGE_TEXT,
        Finished("stop"),
    ],
    "crlf": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Hello", " there", ",", " fri", "end", "!"),
        USAGE_TEXT,
        Finished("stop"),
    ],
    "text_cached": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Hello", " there", ",", " fri", "end", "!"),
        UsageReported(Usage(input_tokens=13, output_tokens=6, cached_tokens=8, reasoning_tokens=2)),
        Finished("stop"),
    ],
    "tool_call": [
        FunctionCallStarted("t0", "call_DpjvsNfnvna8nYyy4L4ODR7F", "get_weather"),
        *texts("t0", ArgumentsDelta, '{"', "location", '":"', "Paris", '"}'),
        UsageReported(Usage(input_tokens=58, output_tokens=15)),
        Finished("stop"),
    ],
    "parallel_tool_calls": [
        FunctionCallStarted("t0", "call_Bys2jVNOjY0Ha3vL4GXRtNJv", "get_weather"),
        *texts("t0", ArgumentsDelta, '{"lo', 'cation": ', '"Paris', '"}'),
        ItemDone("t0"),
        FunctionCallStarted("t1", "call_pXkwQLQflIodwlkm2Wvqw47r", "get_weather"),
        *texts("t1", ArgumentsDelta, '{"lo', 'cation": ', '"Tokyo', '"}'),
        UsageReported(Usage(input_tokens=63, output_tokens=46)),
        Finished("stop"),
    ],
    "text_then_tool": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Let", " me", " check", " the", " weather", " in", " Paris", "."),
        ItemDone("m"),
        FunctionCallStarted("t0", "call_3VVAquDftXEG9nljwIC9TWFs", "get_weather"),
        *texts("t0", ArgumentsDelta, '{"', "location", '":"', "Paris", '"}'),
        UsageReported(Usage(input_tokens=61, output_tokens=23)),
        Finished("stop"),
    ],
    "mistral_whole_call": [
        FunctionCallStarted("t0", "kjr7zSpks", "get_weather"),
        ArgumentsDelta("t0", '{"location": "Paris"}'),
        UsageReported(Usage(input_tokens=88, output_tokens=24)),
        Finished("stop"),
    ],
    "reasoning_vllm": [
        ReasoningStarted("r"),
        *texts(
            "r",
            ReasoningTextDelta,
            "Okay",
            ",",
            " the",
            " user",
            " greeted",
            " me",
            ".",
            " I",
            "'ll",
            " reply",
            " warmly",
            ".\n",
        ),
        ItemDone("r"),
        MessageStarted("m"),
        *texts("m", TextDelta, "\n\n", "Hello", " there", ",", " friend", "!"),
        UsageReported(Usage(input_tokens=12, output_tokens=21)),
        Finished("stop"),
    ],
    "reasoning_llamacpp": [
        ReasoningStarted("r"),
        *texts(
            "r",
            ReasoningTextDelta,
            "Okay",
            ",",
            " a",
            " greeting",
            ".",
            " I",
            " should",
            " greet",
            " back",
            ".",
        ),
        ItemDone("r"),
        MessageStarted("m"),
        *texts("m", TextDelta, "Hello", " there", ",", " friend", "!", " 👋"),
        UsageReported(Usage(input_tokens=11, output_tokens=19)),
        Finished("stop"),
    ],
    "refusal": [
        MessageStarted("m"),
        *texts("m", RefusalDelta, "I'm", " sorry", ",", " I", " can't", " help", " with", " that", "."),
        UsageReported(Usage(input_tokens=24, output_tokens=10)),
        Finished("stop"),
    ],
    "length": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Once", " upon", " a", " time", ","),
        UsageReported(Usage(input_tokens=14, output_tokens=5)),
        Finished("length"),
    ],
    "content_filter": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Here", " is", " how"),
        UsageReported(Usage(input_tokens=19, output_tokens=3)),
        Finished("content_filter"),
    ],
    "error_midstream": [
        MessageStarted("m"),
        *texts("m", TextDelta, "Hello", " there"),
        Failed("server_error", "The server had an error while processing your request. Sorry about that!"),
    ],
}


@pytest.mark.parametrize("case", sorted(STREAMS))
def test_recorded_stream_gives_exact_events(case: str) -> None:
    assert stream_events((FIXTURES / f"{case}.stream.sse").read_bytes(), PLAIN) == STREAMS[case]


@pytest.mark.parametrize("case", sorted(STREAMS))
def test_recorded_stream_split_at_every_byte_offset(case: str) -> None:
    raw = (FIXTURES / f"{case}.stream.sse").read_bytes()
    for cut in range(len(raw) + 1):
        assert stream_events(raw, PLAIN, cut) == STREAMS[case], f"split at byte {cut}"


def test_reasoning_becomes_summary_when_the_client_asks_for_one() -> None:
    events = stream_events(
        (FIXTURES / "reasoning_vllm.stream.sse").read_bytes(), request({"reasoning": {"summary": "auto"}})
    )
    reasoning = [e for e in events if isinstance(e, SummaryDelta | ReasoningTextDelta)]
    assert reasoning and all(isinstance(e, SummaryDelta) and e.part == 0 for e in reasoning)


JSON_CASES = {
    "text": [
        MessageStarted("m"),
        TextDelta("m", "Hello there, friend!"),
        ItemDone("m"),
        USAGE_TEXT,
        Finished("stop"),
    ],
    "tool_call": [
        FunctionCallStarted("t0", "call_TOiqKIDak742ndjkRKCX22OG", "get_weather"),
        ArgumentsDelta("t0", '{"location":"Paris"}'),
        ItemDone("t0"),
        UsageReported(Usage(input_tokens=58, output_tokens=15)),
        Finished("stop"),
    ],
    "reasoning_llamacpp": [
        ReasoningStarted("r"),
        ReasoningTextDelta("r", "Okay, a greeting. I should greet back."),
        ItemDone("r"),
        MessageStarted("m"),
        TextDelta("m", "Hello there, friend! 👋"),
        ItemDone("m"),
        UsageReported(Usage(input_tokens=11, output_tokens=19)),
        Finished("stop"),
    ],
    "refusal": [
        MessageStarted("m"),
        RefusalDelta("m", "I'm sorry, I can't help with that."),
        ItemDone("m"),
        UsageReported(Usage(input_tokens=24, output_tokens=10)),
        Finished("stop"),
    ],
    "length": [
        MessageStarted("m"),
        TextDelta("m", "Once upon a time,"),
        ItemDone("m"),
        UsageReported(Usage(input_tokens=14, output_tokens=5)),
        Finished("length"),
    ],
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_recorded_json_reply_gives_exact_events(case: str) -> None:
    assert (
        GENERIC.parse_response((FIXTURES / f"{case}.response.json").read_bytes(), PLAIN, IDS)
        == JSON_CASES[case]
    )


def test_parallel_calls_json_matches_the_stream_shape() -> None:
    events = GENERIC.parse_response((FIXTURES / "parallel_tool_calls.response.json").read_bytes(), PLAIN, IDS)
    assert [type(e).__name__ for e in events] == [
        "FunctionCallStarted",
        "ArgumentsDelta",
        "ItemDone",
        "FunctionCallStarted",
        "ArgumentsDelta",
        "ItemDone",
        "UsageReported",
        "Finished",
    ]


@pytest.mark.parametrize(
    ("fixture", "status", "kind", "message", "code"),
    [
        ("error_400.json", 400, UpstreamRejected, None, "context_length_exceeded"),
        ("error_400_flat.json", 400, UpstreamRejected, None, None),
        ("error_401.json", 401, UpstreamError, "The upstream rejected the gateway's credentials", None),
        ("error_429.json", 429, RateLimited, None, None),
        ("error_500.json", 500, UpstreamError, None, None),
        ("error_503.json", 503, UpstreamUnavailable, None, None),
    ],
)
def test_vendor_errors_map_to_gateway_statuses(
    fixture: str, status: int, kind: type, message: str | None, code: str | None
) -> None:
    raw = (FIXTURES / fixture).read_bytes()
    error = GENERIC.parse_error(status, raw, "7")
    assert type(error) is kind
    vendor_message = (orjson.loads(raw).get("error") or orjson.loads(raw))["message"]
    assert vendor_message in error.message
    if message:
        assert error.message.startswith(message)
    if code:
        assert error.code == code
    expected_status = {401: 502, 500: 502}.get(status, status)
    assert error.status == expected_status
    if status == 429:
        assert error.headers == {"Retry-After": "7"}


def test_unreadable_vendor_bytes_are_a_protocol_error() -> None:
    translator = GENERIC.open_stream(PLAIN, IDS)
    with pytest.raises(VendorProtocolError):
        translator.feed(SSEMessage(data="{not json"))
    with pytest.raises(VendorProtocolError):
        GENERIC.parse_response(b'{"choices": []}', PLAIN, IDS)
    with pytest.raises(VendorProtocolError):
        GENERIC.open_stream(PLAIN, IDS).feed(
            SSEMessage(
                data='{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}'
            )
        )


def test_stream_cut_before_finish_reason_gives_no_finish() -> None:
    translator = GENERIC.open_stream(PLAIN, IDS)
    translator.feed(SSEMessage(data='{"choices":[{"index":0,"delta":{"content":"x"}}]}'))
    assert translator.finish() == []


def test_reasoning_goes_back_only_where_the_dialect_has_a_field_for_it() -> None:
    """OpenAI's Chat API takes no reasoning input: the item is left out (its replay token is another
    vendor's or absent); compatible servers get its text in their reasoning field."""
    items: list[Any] = [
        {"role": "user", "content": "Q"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
        {"role": "assistant", "content": "A"},
    ]
    assert sent(OPENAI, {"input": items})["messages"] == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
    ]
    assert sent(GENERIC, {"input": items})["messages"][1] == {
        "role": "assistant",
        "content": "A",
        "reasoning_content": "thought",
    }
