"""Anthropic Messages replies → canonical events.

Streams are the primary form: `AnthropicStreamTranslator` is a small state machine keyed by content-block
index. A non-streaming reply is first rewritten as the event sequence it would have streamed
(`message_as_stream`), so JSON and SSE replies share one translation.

Mapping: `text` blocks → one message item (consecutive text blocks are one message); `thinking` and
`redacted_thinking` → one reasoning item each, whose sealed replay data carries the block verbatim with its
signature; `tool_use` → a function_call with the vendor id as `call_id` (or, for the structured-output
tool, the message text). `stop_reason`: `end_turn`, `tool_use`, `stop_sequence`, `pause_turn` → completed
(we declare no server tools, so `pause_turn` only returns what was produced); `max_tokens` and
`model_context_window_exceeded` → incomplete/max_output_tokens; `refusal` → a refusal part, completed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from adapters._common import load_object
from adapters.anthropic.options import AnthropicOptions
from adapters.anthropic.request import VENDOR, output_tool
from gateway.errors import VendorProtocolError
from gateway.sse import SSEMessage
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
    StopReason,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)

JSON = Any
REFUSAL_TEXT = "The model's safety system stopped this response."
_STOP: dict[str, StopReason] = {
    "end_turn": "stop",
    "tool_use": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "refusal": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}


@dataclass
class _Block:
    kind: str
    key: str
    chunks: list[str] = field(default_factory=list)
    signature: str = ""
    data: str = ""


@dataclass
class _Usage:
    input: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output: int = 0
    thinking: int = 0

    def update(self, raw: dict[str, JSON]) -> None:
        self.input = raw.get("input_tokens") or self.input
        self.cache_write = raw.get("cache_creation_input_tokens") or self.cache_write
        self.cache_read = raw.get("cache_read_input_tokens") or self.cache_read
        self.output = raw.get("output_tokens") or self.output
        details = raw.get("output_tokens_details") or {}
        self.thinking = details.get("thinking_tokens") or self.thinking

    def canonical(self) -> Usage:
        """Anthropic's `input_tokens` excludes cache reads and writes; Responses' includes both."""
        return Usage(
            input_tokens=self.input + self.cache_write + self.cache_read,
            output_tokens=self.output,
            cached_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
            reasoning_tokens=self.thinking,
        )


class AnthropicStreamTranslator:
    def __init__(self, request: c.Request, options: AnthropicOptions) -> None:
        self._model = request.model
        self._summarise = request.reasoning.summary is not None
        self._output_tool = output_tool(request, options)
        self._blocks: dict[int, _Block] = {}
        self._message: str | None = None
        self._usage = _Usage()
        self._stop: str | None = None
        self._refusal = REFUSAL_TEXT

    def feed(self, message: SSEMessage) -> list[CanonicalEvent]:
        data = load_object(message.data)
        events: list[CanonicalEvent] = []
        match data.get("type"):
            case "message_start":
                self._usage.update((data.get("message") or {}).get("usage") or {})
            case "content_block_start":
                self._on_block_start(events, data["index"], data["content_block"])
            case "content_block_delta":
                self._on_delta(events, self._block(data["index"]), data["delta"])
            case "content_block_stop":
                self._on_block_stop(events, self._block(data["index"]))
            case "message_delta":
                self._on_message_delta(data)
            case "message_stop" | "ping":
                pass
            case "error":
                error = data.get("error") or {}
                events.append(Failed(str(error.get("type") or "server_error"), str(error.get("message"))))
            case other:
                raise VendorProtocolError(f"Unexpected Anthropic stream event {other!r}.")
        return events

    def finish(self) -> list[CanonicalEvent]:
        if self._stop is None:
            return []  # cut short: the encoder reports the stream as failed
        events: list[CanonicalEvent] = []
        if self._stop == "refusal":
            if self._message is None:
                self._open_message(events, "refusal")
            assert self._message is not None
            events.append(RefusalDelta(self._message, self._refusal))
        events.append(UsageReported(self._usage.canonical()))
        events.append(Finished(_STOP.get(self._stop, "stop")))
        return events

    # ------------------------------------------------------------ blocks

    def _block(self, index: int) -> _Block:
        if index not in self._blocks:
            raise VendorProtocolError(f"Anthropic content block {index} used before it started.")
        return self._blocks[index]

    def _on_block_start(self, events: list[CanonicalEvent], index: int, start: dict[str, JSON]) -> None:
        kind = start.get("type")
        if kind == "tool_use" and start.get("name") == self._output_tool:
            self._close_message(events)  # the structured answer is a message of its own, JSON only
            kind = "output"
        if kind in ("text", "output"):
            if self._message is None:
                self._open_message(events, f"b{index}")
            assert self._message is not None
            block = self._blocks[index] = _Block(kind, self._message)
            if start.get("text"):
                events.append(TextDelta(block.key, start["text"]))
            return
        self._close_message(events)
        key = f"b{index}"
        match kind:
            case "thinking":
                self._blocks[index] = _Block("thinking", key, chunks=[start.get("thinking") or ""])
                events.append(ReasoningStarted(key))
            case "redacted_thinking":
                self._blocks[index] = _Block("redacted_thinking", key, data=start.get("data") or "")
                events.append(ReasoningStarted(key))
            case "tool_use":
                self._blocks[index] = _Block("tool_use", key)
                events.append(FunctionCallStarted(key, start["id"], start["name"]))
            case _:
                raise VendorProtocolError(f"Unexpected Anthropic content block {kind!r}.")

    def _on_delta(self, events: list[CanonicalEvent], block: _Block, delta: dict[str, JSON]) -> None:
        match delta.get("type"):
            case "text_delta" if block.kind == "text":
                events.append(TextDelta(block.key, delta["text"]))
            case "thinking_delta" if block.kind == "thinking":
                block.chunks.append(delta["thinking"])
                events.append(self._reasoning_delta(block.key, delta["thinking"]))
            case "signature_delta" if block.kind == "thinking":
                block.signature += delta["signature"]
            case "input_json_delta" if block.kind in ("tool_use", "output"):
                fragment = delta.get("partial_json") or ""
                if fragment:
                    block.chunks.append(fragment)
                    kind = TextDelta if block.kind == "output" else ArgumentsDelta
                    events.append(kind(block.key, fragment))
            case other:
                raise VendorProtocolError(f"Unexpected Anthropic delta {other!r} in a {block.kind} block.")

    def _on_block_stop(self, events: list[CanonicalEvent], block: _Block) -> None:
        if block.kind in ("tool_use", "output") and not block.chunks:
            kind = TextDelta if block.kind == "output" else ArgumentsDelta
            events.append(kind(block.key, "{}"))  # an empty input is the empty object
        if block.kind == "tool_use":
            events.append(ItemDone(block.key))
        elif block.kind == "thinking":
            # Leading chunk is the block-start text (usually empty); the rest arrived as deltas.
            thinking = {"type": "thinking", "thinking": "".join(block.chunks), "signature": block.signature}
            events.append(ItemDone(block.key, replay=self._replay(thinking)))
        elif block.kind == "redacted_thinking":
            events.append(
                ItemDone(block.key, replay=self._replay({"type": "redacted_thinking", "data": block.data}))
            )

    def _on_message_delta(self, data: dict[str, JSON]) -> None:
        delta = data.get("delta") or {}
        if delta.get("stop_reason"):
            self._stop = delta["stop_reason"]
        details = delta.get("stop_details") or {}
        if isinstance(details, dict) and details.get("explanation"):
            self._refusal = str(details["explanation"])
        self._usage.update(data.get("usage") or {})

    # ------------------------------------------------------------ helpers

    def _open_message(self, events: list[CanonicalEvent], key: str) -> None:
        self._message = key
        events.append(MessageStarted(key))

    def _close_message(self, events: list[CanonicalEvent]) -> None:
        if self._message is not None:
            events.append(ItemDone(self._message))
            self._message = None

    def _reasoning_delta(self, key: str, text: str) -> CanonicalEvent:
        return SummaryDelta(key, text) if self._summarise else ReasoningTextDelta(key, text)

    def _replay(self, block: dict[str, JSON]) -> dict[str, JSON]:
        return {"vendor": VENDOR, "model": self._model, "blocks": [block]}


def message_as_stream(body: bytes) -> Iterator[tuple[str, dict[str, JSON]]]:
    """A complete Messages reply as the (event, data) sequence a stream of it would carry."""
    message = load_object(body)
    if message.get("type") != "message" or not isinstance(message.get("content"), list):
        raise VendorProtocolError("The upstream reply is not an Anthropic message.")
    yield "message_start", {"type": "message_start", "message": {**message, "content": []}}
    for index, block in enumerate(message["content"]):
        for event in _block_events(index, block):
            yield event["type"], event
    delta = {"stop_reason": message.get("stop_reason"), "stop_details": message.get("stop_details")}
    yield "message_delta", {"type": "message_delta", "delta": delta, "usage": message.get("usage") or {}}
    yield "message_stop", {"type": "message_stop"}


def _block_events(index: int, block: dict[str, JSON]) -> Iterator[dict[str, JSON]]:
    kind = block.get("type")
    start: dict[str, JSON]
    delta: dict[str, JSON] | None
    if kind == "text":
        start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block.get("text", "")}
    elif kind == "thinking":
        start, delta = (
            {"type": "thinking", "thinking": ""},
            {"type": "thinking_delta", "thinking": block.get("thinking", "")},
        )
    elif kind == "tool_use":
        start = {"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": {}}
        delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()}
    else:
        start, delta = block, None
    yield {"type": "content_block_start", "index": index, "content_block": start}
    if delta is not None:
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    if kind == "thinking":
        signature = {"type": "signature_delta", "signature": block.get("signature", "")}
        yield {"type": "content_block_delta", "index": index, "delta": signature}
    yield {"type": "content_block_stop", "index": index}
