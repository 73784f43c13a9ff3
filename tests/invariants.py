"""The stream invariant checker every streaming test runs its events through.

It checks the grammar of a Responses event stream as real OpenAI streams and the official SDK define it
(shared/reference/responses-api.md §6): contiguous sequence numbers from 0, every index and id announced
by `.added` before use, exactly one `.done` per `.added`, deltas that concatenate to their `.done`
values, a terminal response whose `output` equals the items' `.done` states, exactly one terminal event,
and every event valid against the `openai` SDK's `ResponseStreamEvent` types.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from openai.types.responses import ResponseStreamEvent

_EVENT_TYPES: dict[str, Any] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
LIFECYCLE = ("response.created", "response.queued", "response.in_progress", *TERMINAL)

_TEXT_DELTAS = {
    "response.output_text.delta": ("response.output_text.done", "text", "output_text"),
    "response.refusal.delta": ("response.refusal.done", "refusal", "refusal"),
    "response.reasoning_text.delta": ("response.reasoning_text.done", "text", "reasoning_text"),
}


class StreamInvariantError(AssertionError):
    pass


@dataclass
class _Item:
    index: int
    item: dict[str, Any]
    done: dict[str, Any] | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    parts_done: list[dict[str, Any] | None] = field(default_factory=list)
    texts: dict[int, list[str]] = field(default_factory=dict)
    text_done: set[int] = field(default_factory=set)
    summaries: list[str | None] = field(default_factory=list)
    summary_text: dict[int, list[str]] = field(default_factory=dict)
    summary_text_done: set[int] = field(default_factory=set)
    arguments: list[str] = field(default_factory=list)
    arguments_done: str | None = None


def _fail(index: int, event: dict[str, Any], message: str) -> StreamInvariantError:
    return StreamInvariantError(f"event #{index} ({event.get('type')}): {message}")


def check_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Raise `StreamInvariantError` on the first breach; return the terminal response object."""
    if not events:
        raise StreamInvariantError("empty stream")
    items: dict[int, _Item] = {}
    ids: dict[str, int] = {}
    terminal: dict[str, Any] | None = None
    response_id: str | None = None
    for i, event in enumerate(events):
        _EVENT_TYPES[event["type"]].model_validate(event, strict=True)
        if event.get("sequence_number") != i:
            raise _fail(i, event, f"sequence_number {event.get('sequence_number')} != {i}")
        if terminal is not None:
            raise _fail(i, event, "event after the terminal event")
        kind = event["type"]
        if i == 0 and kind != "response.created":
            raise _fail(i, event, "the first event must be response.created")
        if kind in LIFECYCLE:
            rid = event["response"]["id"]
            if response_id is not None and rid != response_id:
                raise _fail(i, event, "response id changed between lifecycle events")
            response_id = rid
            if kind in TERMINAL:
                terminal = event["response"]
            continue
        if kind == "error":
            continue
        _check_item_event(i, event, items, ids)
    if terminal is None:
        raise StreamInvariantError("no terminal event")
    for index, state in items.items():
        if state.done is None and terminal["status"] != "failed":
            raise StreamInvariantError(f"output_index {index} added but never done")
    done_items = [items[k].done for k in sorted(items) if items[k].done is not None]
    if terminal["output"] != done_items:
        raise StreamInvariantError("terminal response.output differs from the output_item.done items")
    return terminal


def _check_item_event(i: int, event: dict[str, Any], items: dict[int, _Item], ids: dict[str, int]) -> None:
    kind = event["type"]
    index = event["output_index"]
    if kind == "response.output_item.added":
        if index in items or index != len(items):
            raise _fail(i, event, f"output_index {index} is not the next new index")
        item_id = event["item"]["id"]
        if item_id in ids:
            raise _fail(i, event, f"item id {item_id} reused")
        ids[item_id] = index
        items[index] = _Item(index, event["item"])
        return
    state = items.get(index)
    if state is None:
        raise _fail(i, event, f"output_index {index} used before output_item.added")
    if state.done is not None:
        raise _fail(i, event, f"output_index {index} used after output_item.done")
    if "item_id" in event and event["item_id"] != state.item["id"]:
        raise _fail(i, event, "item_id does not match the item at this output_index")
    if kind == "response.output_item.done":
        _check_item_done(i, event, state)
    elif kind in ("response.content_part.added", "response.content_part.done"):
        _check_part(i, event, state)
    elif kind in _TEXT_DELTAS or kind in {v[0] for v in _TEXT_DELTAS.values()}:
        _check_text(i, event, state)
    elif kind.startswith("response.reasoning_summary_"):
        _check_summary(i, event, state)
    elif kind == "response.function_call_arguments.delta":
        if state.arguments_done is not None:
            raise _fail(i, event, "arguments delta after arguments done")
        state.arguments.append(event["delta"])
    elif kind == "response.function_call_arguments.done":
        if event["arguments"] != "".join(state.arguments):
            raise _fail(i, event, "arguments.done differs from the concatenated deltas")
        state.arguments_done = event["arguments"]
    else:
        raise _fail(i, event, "event type not covered by the checker")


def _check_item_done(i: int, event: dict[str, Any], state: _Item) -> None:
    item = event["item"]
    if item["id"] != state.item["id"] or item["type"] != state.item["type"]:
        raise _fail(i, event, "output_item.done describes another item")
    if any(done is None for done in state.parts_done) or None in state.summaries:
        raise _fail(i, event, "item done while a content or summary part is still open")
    if item["type"] == "message":
        if item["content"] != state.parts_done:
            raise _fail(i, event, "message content differs from its content_part.done parts")
    elif item["type"] == "function_call":
        if state.arguments_done is None or item["arguments"] != state.arguments_done:
            raise _fail(i, event, "function_call done without matching arguments.done")
        if item["call_id"] != state.item["call_id"] or item["name"] != state.item["name"]:
            raise _fail(i, event, "call_id or name changed between added and done")
    elif item["type"] == "reasoning":
        summary = [{"type": "summary_text", "text": text} for text in state.summaries]
        if item["summary"] != summary:
            raise _fail(i, event, "reasoning summary differs from its summary parts")
        if item.get("content", []) != state.parts_done:
            raise _fail(i, event, "reasoning content differs from its content parts")
    state.done = item


def _check_part(i: int, event: dict[str, Any], state: _Item) -> None:
    content_index = event["content_index"]
    if event["type"] == "response.content_part.added":
        if content_index != len(state.parts):
            raise _fail(i, event, f"content_index {content_index} is not the next part index")
        state.parts.append(event["part"])
        state.parts_done.append(None)
        state.texts[content_index] = []
        return
    if content_index >= len(state.parts) or state.parts_done[content_index] is not None:
        raise _fail(i, event, "content_part.done for a part not open")
    if content_index not in state.text_done:
        raise _fail(i, event, "content_part.done before its text/refusal .done")
    part = event["part"]
    text = part.get("text", part.get("refusal"))
    if text != "".join(state.texts[content_index]):
        raise _fail(i, event, "content_part.done text differs from the concatenated deltas")
    state.parts_done[content_index] = part


def _check_text(i: int, event: dict[str, Any], state: _Item) -> None:
    content_index = event["content_index"]
    if content_index >= len(state.parts) or state.parts_done[content_index] is not None:
        raise _fail(i, event, f"content_index {content_index} not announced by content_part.added")
    kind = event["type"]
    part_type = state.parts[content_index]["type"]
    if kind in _TEXT_DELTAS:
        if _TEXT_DELTAS[kind][2] != part_type or content_index in state.text_done:
            raise _fail(i, event, f"{kind} on a {part_type} part")
        state.texts[content_index].append(event["delta"])
        return
    field_name = next(v[1] for v in _TEXT_DELTAS.values() if v[0] == kind)
    if event[field_name] != "".join(state.texts[content_index]):
        raise _fail(i, event, f"{kind} differs from the concatenated deltas")
    state.text_done.add(content_index)


def _check_summary(i: int, event: dict[str, Any], state: _Item) -> None:
    kind = event["type"]
    index = event["summary_index"]
    if kind == "response.reasoning_summary_part.added":
        if index != len(state.summaries):
            raise _fail(i, event, f"summary_index {index} is not the next summary index")
        state.summaries.append(None)
        state.summary_text[index] = []
        return
    if index >= len(state.summaries) or state.summaries[index] is not None:
        raise _fail(i, event, f"summary_index {index} not open")
    text = "".join(state.summary_text[index])
    if kind == "response.reasoning_summary_text.delta":
        if index in state.summary_text_done:
            raise _fail(i, event, "summary delta after summary text done")
        state.summary_text[index].append(event["delta"])
    elif kind == "response.reasoning_summary_text.done":
        if event["text"] != text:
            raise _fail(i, event, "summary text done differs from the deltas")
        state.summary_text_done.add(index)
    elif kind == "response.reasoning_summary_part.done":
        if index not in state.summary_text_done or event["part"]["text"] != text:
            raise _fail(i, event, "summary part done without matching text done")
        state.summaries[index] = text
    else:
        raise _fail(i, event, "unknown reasoning summary event")


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """Our own SSE bytes → events, asserting each frame's `event:` line equals its `type`, no [DONE]."""
    import orjson

    events = []
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        lines = frame.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        event = orjson.loads(lines[1][len("data: ") :])
        assert lines[0][len("event: ") :] == event["type"], frame
        events.append(event)
    return events
