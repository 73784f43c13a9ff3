"""The Responses encoder: canonical events in, exact Responses wire events out.

It is the only place that knows the wire event grammar, so every adapter gets it right for free. Rules:

- `start()` emits `response.created` then `response.in_progress` (sequence 0 and 1); for a background
  run `response.queued` comes between them.
- An item is announced (`output_item.added`) when its `*Started` event arrives, gets the next
  `output_index` and a gateway-minted id (`msg_`, `fc_`, `rs_`), and is closed exactly once
  (`output_item.done`) by `ItemDone`, by the terminal event, or by a failure. Several items may be open.
- Content parts open lazily on the first delta of their kind and get `content_index` 0, 1, … per item;
  a delta of another kind closes the open part first (`*.done`, then `content_part.done`). Reasoning
  summary paragraphs work the same way per `summary_index`.
- `finish()` closes what is still open (status `incomplete` when the turn was cut short) and emits
  exactly one terminal event: `response.completed`, or `response.incomplete` with its reason. A stream
  that ends without `Finished` is a failure. `fail()` closes open items as incomplete, then emits
  `error` and `response.failed`. Nothing is emitted after a terminal event.
- `sequence_number` starts at 0 and rises by one per event.

Any event that breaks these rules (an unknown key, a delta of the wrong kind, a second start) raises
`InternalError`: a bug in an adapter, never something to paper over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import InternalError, RosettaError
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
    StopReason,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)

WireEvent = dict[str, Any]
PartKind = Literal["output_text", "refusal", "reasoning_text"]

_INCOMPLETE_REASON: dict[StopReason, str] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}
_RESPONSE_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)
"""`Response.error.code` is an enum in the SDK types; other codes are kept on the `error` event only."""
_DELTA_EVENT: dict[PartKind, str] = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning_text": "response.reasoning_text.delta",
}


@dataclass
class _Part:
    kind: PartKind
    chunks: list[str] = field(default_factory=list)

    def wire(self, text: str) -> dict[str, Any]:
        if self.kind == "output_text":
            return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        if self.kind == "refusal":
            return {"type": "refusal", "refusal": text}
        return {"type": "reasoning_text", "text": text}


@dataclass
class _Item:
    index: int
    id: str
    type: Literal["message", "function_call", "reasoning"]
    call_id: str = ""
    name: str = ""
    namespace: str | None = None
    encrypted_content: str | None = None
    arguments: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    part_kinds: list[PartKind] = field(default_factory=list)
    open_part: _Part | None = None
    summary: list[str] = field(default_factory=list)
    open_summary: list[str] | None = None
    open_summary_number: int = -1

    def wire(self, status: str) -> dict[str, Any]:
        if self.type == "message":
            content = [_Part(k).wire(t) for k, t in zip(self.part_kinds, self.parts, strict=True)]
            return {
                "id": self.id,
                "type": "message",
                "status": status,
                "content": content,
                "role": "assistant",
            }
        if self.type == "function_call":
            call = {
                "id": self.id,
                "type": "function_call",
                "status": status,
                "arguments": "".join(self.arguments),
                "call_id": self.call_id,
                "name": self.name,
            }
            if self.namespace is not None:
                call["namespace"] = self.namespace
            return call
        item: dict[str, Any] = {
            "id": self.id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text} for text in self.summary],
        }
        if self.parts:
            item["content"] = [{"type": "reasoning_text", "text": text} for text in self.parts]
        if self.encrypted_content is not None:
            item["encrypted_content"] = self.encrypted_content
        return item


class ResponsesEncoder:
    """Encodes one response. `response` is the skeleton with every echoed setting already filled in."""

    def __init__(
        self,
        response: dict[str, Any],
        new_id: Callable[[str], str],
        now: Callable[[], int],
        seal: Callable[[Any], str],
        namespaced: Mapping[str, tuple[str, str]] | None = None,
    ):
        """`namespaced`: upstream function name → (namespace, name), for functions a `namespace` tool
        declared (they go upstream flattened and come back split)."""
        self._response = response
        self._namespaced = namespaced or {}
        self._new_id = new_id
        self._now = now
        self._seal = seal
        self._seq = 0
        self._items: dict[str, _Item] = {}
        self._open: set[str] = set()
        self._output: list[dict[str, Any] | None] = []
        self._usage = Usage()
        self._reason: StopReason | None = None
        self._started = False
        self._terminal = False

    @property
    def response(self) -> dict[str, Any]:
        """The Response object in its current state (final once a terminal event was emitted)."""
        return self._response

    @property
    def finished(self) -> bool:
        return self._terminal

    @property
    def started(self) -> bool:
        return self._started

    # ------------------------------------------------------------ lifecycle

    def start(self, queued: bool = False) -> list[WireEvent]:
        """`response.created`, then `response.in_progress`; a background run is first `queued` (real
        background streams: created with status queued, `response.queued`, then in_progress)."""
        if self._started:
            raise InternalError("encoder started twice")
        self._started = True
        self._response.update(status="queued" if queued else "in_progress", output=[], usage=None)
        events = [self._lifecycle("response.created")]
        if queued:
            events.append(self._lifecycle("response.queued"))
            self._response["status"] = "in_progress"
        return [*events, self._lifecycle("response.in_progress")]

    def feed(self, event: CanonicalEvent) -> list[WireEvent]:
        if not self._started or self._terminal:
            raise InternalError(f"event {type(event).__name__} outside an open response")
        out: list[WireEvent] = []
        match event:
            case MessageStarted(key=key):
                self._add(out, key, _Item(len(self._output), self._new_id("msg"), "message"))
            case FunctionCallStarted(key=key, call_id=call_id, name=name):
                namespace, name = self._namespaced.get(name, (None, name))
                item = _Item(
                    len(self._output),
                    self._new_id("fc"),
                    "function_call",
                    call_id=call_id,
                    name=name,
                    namespace=namespace,
                )
                self._add(out, key, item)
            case ReasoningStarted(key=key, encrypted_content=blob):
                self._add(
                    out,
                    key,
                    _Item(len(self._output), self._new_id("rs"), "reasoning", encrypted_content=blob),
                )
            case TextDelta(key=key, text=text):
                self._content_delta(out, self._open_item(key, "message"), "output_text", text)
            case RefusalDelta(key=key, text=text):
                self._content_delta(out, self._open_item(key, "message"), "refusal", text)
            case ReasoningTextDelta(key=key, text=text):
                self._content_delta(out, self._open_item(key, "reasoning"), "reasoning_text", text)
            case SummaryDelta(key=key, text=text, part=number):
                self._summary_delta(out, self._open_item(key, "reasoning"), number, text)
            case ArgumentsDelta(key=key, text=text):
                item = self._open_item(key, "function_call")
                item.arguments.append(text)
                out.append(self._item_event("response.function_call_arguments.delta", item, delta=text))
            case ItemDone(key=key, encrypted_content=blob, replay=replay):
                item = self._open_item(key, None)
                if replay is not None:
                    item.encrypted_content = self._seal(replay)
                elif blob is not None:
                    item.encrypted_content = blob
                self._close(out, key, "completed")
            case UsageReported(usage=usage):
                self._usage = usage
            case Finished(reason=reason):
                self._reason = reason
            case Failed(code=code, message=message):
                out.extend(self.fail(code, message))
        return out

    def finish(self) -> list[WireEvent]:
        """The upstream is done: close what is open and emit the terminal event."""
        if self._terminal:
            return []
        if self._reason is None:
            return self.fail("server_error", "The upstream stream ended before the response was complete.")
        out: list[WireEvent] = []
        incomplete = _INCOMPLETE_REASON.get(self._reason)
        for key in sorted(self._open, key=lambda k: self._items[k].index):
            self._close(out, key, "incomplete" if incomplete else "completed")
        self._terminal = True
        self._response.update(output=self._final_output(), usage=self._usage_wire())
        if incomplete:
            self._response.update(status="incomplete", incomplete_details={"reason": incomplete})
            out.append(self._lifecycle("response.incomplete"))
        else:
            self._response.update(status="completed", completed_at=self._now())
            out.append(self._lifecycle("response.completed"))
        return out

    def fail(self, code: str, message: str, error: RosettaError | None = None) -> list[WireEvent]:
        """A failure after the stream began: `error`, then `response.failed`, then nothing more."""
        if self._terminal:
            return []
        out: list[WireEvent] = []
        for key in sorted(self._open, key=lambda k: self._items[k].index):
            self._close(out, key, "incomplete")
        self._terminal = True
        error_type = error.type if error is not None else "server_error"
        param = error.param if error is not None else None
        out.append(
            {
                "type": "error",
                "sequence_number": self._next_seq(),
                "code": code,
                "message": message,
                "param": param,
                "error": {"type": error_type, "code": code, "message": message, "param": param},
            }
        )
        self._response.update(
            status="failed",
            output=self._final_output(),
            usage=self._usage_wire() if self._usage != Usage() else None,
            error={"code": code if code in _RESPONSE_ERROR_CODES else "server_error", "message": message},
        )
        out.append(self._lifecycle("response.failed"))
        return out

    # ------------------------------------------------------------ items

    def _add(self, out: list[WireEvent], key: str, item: _Item) -> None:
        if key in self._items:
            raise InternalError(f"item key {key!r} started twice")
        self._items[key] = item
        self._open.add(key)
        self._output.append(None)
        wire = item.wire("in_progress")
        out.append(
            {
                "type": "response.output_item.added",
                "sequence_number": self._next_seq(),
                "output_index": item.index,
                "item": wire,
            }
        )

    def _open_item(self, key: str, kind: str | None) -> _Item:
        if key not in self._open:
            raise InternalError(f"event for item key {key!r} which is not open")
        item = self._items[key]
        if kind is not None and item.type != kind:
            raise InternalError(f"{kind} event for a {item.type} item")
        return item

    def _close(self, out: list[WireEvent], key: str, status: str) -> None:
        item = self._items[key]
        self._close_part(out, item)
        self._close_summary(out, item)
        if item.type == "function_call":
            out.append(
                self._item_event(
                    "response.function_call_arguments.done", item, arguments="".join(item.arguments)
                )
            )
        final = item.wire(status)
        self._output[item.index] = final
        self._open.discard(key)
        out.append(
            {
                "type": "response.output_item.done",
                "sequence_number": self._next_seq(),
                "output_index": item.index,
                "item": final,
            }
        )

    # ------------------------------------------------------------ content parts and summaries

    def _content_delta(self, out: list[WireEvent], item: _Item, kind: PartKind, text: str) -> None:
        if item.open_summary is not None:
            self._close_summary(out, item)
        part = item.open_part
        if part is None or part.kind != kind:
            self._close_part(out, item)
            part = item.open_part = _Part(kind)
            out.append(self._part_event("response.content_part.added", item, part.wire("")))
        part.chunks.append(text)
        event = self._item_event(_DELTA_EVENT[kind], item, content_index=len(item.parts), delta=text)
        if kind == "output_text":
            event["logprobs"] = []
        out.append(event)

    def _close_part(self, out: list[WireEvent], item: _Item) -> None:
        part = item.open_part
        if part is None:
            return
        text = "".join(part.chunks)
        index = len(item.parts)
        if part.kind == "output_text":
            out.append(
                self._item_event(
                    "response.output_text.done", item, content_index=index, text=text, logprobs=[]
                )
            )
        elif part.kind == "refusal":
            out.append(self._item_event("response.refusal.done", item, content_index=index, refusal=text))
        else:
            out.append(self._item_event("response.reasoning_text.done", item, content_index=index, text=text))
        out.append(self._part_event("response.content_part.done", item, part.wire(text)))
        item.parts.append(text)
        item.part_kinds.append(part.kind)
        item.open_part = None

    def _summary_delta(self, out: list[WireEvent], item: _Item, number: int, text: str) -> None:
        self._close_part(out, item)
        if item.open_summary is None or item.open_summary_number != number:
            self._close_summary(out, item)
            item.open_summary, item.open_summary_number = [], number
            out.append(
                self._item_event(
                    "response.reasoning_summary_part.added",
                    item,
                    summary_index=len(item.summary),
                    part={"type": "summary_text", "text": ""},
                )
            )
        assert item.open_summary is not None
        item.open_summary.append(text)
        out.append(
            self._item_event(
                "response.reasoning_summary_text.delta", item, summary_index=len(item.summary), delta=text
            )
        )

    def _close_summary(self, out: list[WireEvent], item: _Item) -> None:
        if item.open_summary is None:
            return
        text = "".join(item.open_summary)
        index = len(item.summary)
        out.append(
            self._item_event("response.reasoning_summary_text.done", item, summary_index=index, text=text)
        )
        out.append(
            self._item_event(
                "response.reasoning_summary_part.done",
                item,
                summary_index=index,
                part={"type": "summary_text", "text": text},
            )
        )
        item.summary.append(text)
        item.open_summary = None

    # ------------------------------------------------------------ wire helpers

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _item_event(self, type_: str, item: _Item, **fields: Any) -> WireEvent:
        return {
            "type": type_,
            "sequence_number": self._next_seq(),
            "item_id": item.id,
            "output_index": item.index,
            **fields,
        }

    def _part_event(self, type_: str, item: _Item, part: dict[str, Any]) -> WireEvent:
        return self._item_event(type_, item, content_index=len(item.parts), part=part)

    def _lifecycle(self, type_: str) -> WireEvent:
        snapshot = dict(self._response)
        snapshot["output"] = list(snapshot["output"])
        return {"type": type_, "sequence_number": self._next_seq(), "response": snapshot}

    def _final_output(self) -> list[dict[str, Any]]:
        return [item for item in self._output if item is not None]

    def _usage_wire(self) -> dict[str, Any]:
        usage = self._usage
        return {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {
                "cached_tokens": usage.cached_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
            },
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }
