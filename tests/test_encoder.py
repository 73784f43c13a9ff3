"""The encoder alone owns the wire grammar: exact event sequences for each shape of reply."""

from __future__ import annotations

import pytest

from gateway.errors import InternalError
from schemas.canonical_events import (
    ArgumentsDelta,
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
from tests.helpers import brief, encode_all, make_encoder
from tests.invariants import check_stream


def test_plain_text_follows_the_real_openai_order() -> None:
    events = encode_all(
        [
            MessageStarted("m"),
            TextDelta("m", "Hel"),
            TextDelta("m", "lo"),
            UsageReported(Usage(input_tokens=13, output_tokens=6, cached_tokens=3, reasoning_tokens=0)),
            Finished("stop"),
        ]
    )
    assert brief(events) == [
        ("response.created", None, None, None),
        ("response.in_progress", None, None, None),
        ("response.output_item.added", 0, None, None),
        ("response.content_part.added", 0, 0, None),
        ("response.output_text.delta", 0, 0, "Hel"),
        ("response.output_text.delta", 0, 0, "lo"),
        ("response.output_text.done", 0, 0, "Hello"),
        ("response.content_part.done", 0, 0, None),
        ("response.output_item.done", 0, None, None),
        ("response.completed", None, None, None),
    ]
    final = check_stream(events)
    assert final["status"] == "completed"
    assert final["completed_at"] == 1700000001
    assert final["usage"] == {
        "input_tokens": 13,
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 19,
    }
    assert final["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}],
            "role": "assistant",
        }
    ]
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["usage"] is None
    assert events[0]["response"]["output"] == []


def test_reasoning_summary_parts_then_text() -> None:
    events = encode_all(
        [
            ReasoningStarted("r"),
            SummaryDelta("r", "First ", 0),
            SummaryDelta("r", "para.", 0),
            SummaryDelta("r", "Second.", 1),
            ItemDone("r", encrypted_content="blob"),
            MessageStarted("m"),
            TextDelta("m", "Answer"),
            Finished(),
        ]
    )
    assert brief(events)[2:-1] == [
        ("response.output_item.added", 0, None, None),
        ("response.reasoning_summary_part.added", 0, 0, None),
        ("response.reasoning_summary_text.delta", 0, 0, "First "),
        ("response.reasoning_summary_text.delta", 0, 0, "para."),
        ("response.reasoning_summary_text.done", 0, 0, "First para."),
        ("response.reasoning_summary_part.done", 0, 0, None),
        ("response.reasoning_summary_part.added", 0, 1, None),
        ("response.reasoning_summary_text.delta", 0, 1, "Second."),
        ("response.reasoning_summary_text.done", 0, 1, "Second."),
        ("response.reasoning_summary_part.done", 0, 1, None),
        ("response.output_item.done", 0, None, None),
        ("response.output_item.added", 1, None, None),
        ("response.content_part.added", 1, 0, None),
        ("response.output_text.delta", 1, 0, "Answer"),
        ("response.output_text.done", 1, 0, "Answer"),
        ("response.content_part.done", 1, 0, None),
        ("response.output_item.done", 1, None, None),
    ]
    final = check_stream(events)
    assert final["output"][0] == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [
            {"type": "summary_text", "text": "First para."},
            {"type": "summary_text", "text": "Second."},
        ],
        "encrypted_content": "blob",
    }
    assert "status" not in events[2]["item"]  # real reasoning items carry no status key


def test_raw_reasoning_text_is_a_reasoning_text_content_part() -> None:
    events = encode_all([ReasoningStarted("r"), ReasoningTextDelta("r", "think"), Finished()])
    assert brief(events)[2:-1] == [
        ("response.output_item.added", 0, None, None),
        ("response.content_part.added", 0, 0, None),
        ("response.reasoning_text.delta", 0, 0, "think"),
        ("response.reasoning_text.done", 0, 0, "think"),
        ("response.content_part.done", 0, 0, None),
        ("response.output_item.done", 0, None, None),
    ]
    final = check_stream(events)
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "think"}]
    assert final["output"][0]["summary"] == []


def test_parallel_function_calls_keep_call_ids() -> None:
    events = encode_all(
        [
            FunctionCallStarted("a", "call_A", "get_weather"),
            ArgumentsDelta("a", '{"location":'),
            ArgumentsDelta("a", '"Paris"}'),
            ItemDone("a"),
            FunctionCallStarted("b", "call_B", "get_weather"),
            ArgumentsDelta("b", '{"location":"Tokyo"}'),
            Finished(),
        ]
    )
    assert brief(events)[2:] == [
        ("response.output_item.added", 0, None, None),
        ("response.function_call_arguments.delta", 0, None, '{"location":'),
        ("response.function_call_arguments.delta", 0, None, '"Paris"}'),
        ("response.function_call_arguments.done", 0, None, '{"location":"Paris"}'),
        ("response.output_item.done", 0, None, None),
        ("response.output_item.added", 1, None, None),
        ("response.function_call_arguments.delta", 1, None, '{"location":"Tokyo"}'),
        ("response.function_call_arguments.done", 1, None, '{"location":"Tokyo"}'),
        ("response.output_item.done", 1, None, None),
        ("response.completed", None, None, None),
    ]
    final = check_stream(events)
    assert [(o["call_id"], o["arguments"], o["status"]) for o in final["output"]] == [
        ("call_A", '{"location":"Paris"}', "completed"),
        ("call_B", '{"location":"Tokyo"}', "completed"),
    ]
    assert events[2]["item"] == {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_A",
        "name": "get_weather",
    }
    assert "content_index" not in events[3]


def test_refusal_then_text_are_two_parts_of_one_message() -> None:
    events = encode_all([MessageStarted("m"), RefusalDelta("m", "No."), TextDelta("m", "But"), Finished()])
    assert brief(events)[3:9] == [
        ("response.content_part.added", 0, 0, None),
        ("response.refusal.delta", 0, 0, "No."),
        ("response.refusal.done", 0, 0, "No."),
        ("response.content_part.done", 0, 0, None),
        ("response.content_part.added", 0, 1, None),
        ("response.output_text.delta", 0, 1, "But"),
    ]
    final = check_stream(events)
    assert final["output"][0]["content"][0] == {"type": "refusal", "refusal": "No."}


@pytest.mark.parametrize(
    ("reason", "detail"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_short_turn_is_incomplete(reason: str, detail: str) -> None:
    events = encode_all([MessageStarted("m"), TextDelta("m", "trunc"), Finished(reason)])  # type: ignore[arg-type]
    assert events[-1]["type"] == "response.incomplete"
    final = check_stream(events)
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": detail}
    assert final["completed_at"] is None
    assert final["output"][0]["status"] == "incomplete"


def test_upstream_failure_mid_stream_closes_items_then_error_then_failed() -> None:
    events = encode_all([MessageStarted("m"), TextDelta("m", "par"), Failed("server_error", "boom")])
    assert [e["type"] for e in events[-5:]] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "error",
        "response.failed",
    ]
    error = events[-2]
    assert error["code"] == "server_error" and error["message"] == "boom" and error["param"] is None
    assert error["error"] == {
        "type": "server_error",
        "code": "server_error",
        "message": "boom",
        "param": None,
    }
    final = check_stream(events)
    assert final["status"] == "failed"
    assert final["error"] == {"code": "server_error", "message": "boom"}
    assert final["output"][0]["status"] == "incomplete"


def test_stream_that_ends_without_finishing_fails() -> None:
    events = encode_all([MessageStarted("m"), TextDelta("m", "x")])
    assert events[-1]["type"] == "response.failed"
    check_stream(events)


def test_adapter_bugs_raise_instead_of_emitting_bad_events() -> None:
    encoder = make_encoder()
    encoder.start()
    with pytest.raises(InternalError):
        encoder.feed(TextDelta("nope", "x"))
    encoder.feed(FunctionCallStarted("f", "call_1", "fn"))
    with pytest.raises(InternalError):
        encoder.feed(TextDelta("f", "x"))
    with pytest.raises(InternalError):
        encoder.feed(FunctionCallStarted("f", "call_2", "fn"))


def test_nothing_after_the_terminal_event() -> None:
    encoder = make_encoder()
    encoder.start()
    encoder.feed(Finished())
    assert [e["type"] for e in encoder.finish()] == ["response.completed"]
    assert encoder.finish() == []
    with pytest.raises(InternalError):
        encoder.feed(MessageStarted("m"))
