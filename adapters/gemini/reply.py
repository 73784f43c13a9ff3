"""Gemini replies (`GenerateContentResponse` chunks) → canonical events.

Every chunk is a complete response holding only new parts, so a JSON reply is simply a one-chunk stream and
shares this translator. Parts: `thought: true` text → reasoning summary; other text → the message;
`functionCall` (always whole) → a function_call with Gemini's id, or one minted here. Thought signatures
may sit on any part; they are collected into one reasoning item per reply, opened before the first part
that needs it and closed at the end, whose sealed replay data maps each call to its signature and says
whether its id was Gemini's own. Usage is cumulative per chunk: the last one counts.

`finishReason`: STOP → completed; MAX_TOKENS → incomplete/max_output_tokens; the safety family
(SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, LANGUAGE, IMAGE_*, OTHER) →
incomplete/content_filter; MALFORMED_FUNCTION_CALL and the other tool-call failures → failed (the turn
produced nothing usable; clients retry); a blocked prompt → failed `invalid_prompt` in a stream, 400 in
a JSON reply.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters._common import load_object
from adapters.base import IdMinter
from adapters.gemini.request import VENDOR
from gateway.errors import InvalidRequest
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
    StopReason,
    SummaryDelta,
    TextDelta,
    Usage,
    UsageReported,
)

JSON = Any
_STOP: dict[str, StopReason] = {"STOP": "stop", "MAX_TOKENS": "length", "FINISH_REASON_UNSPECIFIED": "stop"}
_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "LANGUAGE",
    "OTHER",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_OTHER",
    "IMAGE_RECITATION",
    "NO_IMAGE",
}
REASONING, MESSAGE = "reasoning", "message"


class GeminiStreamTranslator:
    def __init__(self, request: c.Request, ids: IdMinter) -> None:
        self._model = request.model
        self._ids = ids
        self._reasoning = False
        self._message = False
        self._calls: dict[str, dict[str, JSON]] = {}
        self._text_signatures: list[str] = []
        self._count = 0
        self._usage: Usage | None = None
        self._finish: str | None = None

    def feed(self, message: SSEMessage) -> list[CanonicalEvent]:
        chunk = load_object(message.data)
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            return [Failed(str(error.get("status") or "server_error").lower(), str(error.get("message")))]
        events: list[CanonicalEvent] = []
        blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
        candidates = chunk.get("candidates") or []
        if blocked and not candidates:
            return [Failed("invalid_prompt", prompt_blocked_message(blocked))]
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                self._on_part(events, part)
            if candidate.get("finishReason"):
                self._finish = candidate["finishReason"]
        if chunk.get("usageMetadata"):
            self._usage = _usage(chunk["usageMetadata"])
        return events

    def finish(self) -> list[CanonicalEvent]:
        if self._finish is None:
            return []  # cut short: the encoder reports the stream as failed
        events: list[CanonicalEvent] = []
        if self._message:
            events.append(ItemDone(MESSAGE))
        if self._reasoning:
            events.append(ItemDone(REASONING, replay=self._replay()))
        if self._usage is not None:
            events.append(UsageReported(self._usage))
        if self._finish in _FILTERED:
            events.append(Finished("content_filter"))
        elif self._finish in _STOP:
            events.append(Finished(_STOP[self._finish]))
        else:
            events.append(Failed("server_error", f"Gemini ended the turn with {self._finish}."))
        return events

    def _on_part(self, events: list[CanonicalEvent], part: dict[str, JSON]) -> None:
        signature = part.get("thoughtSignature")
        if part.get("thought") and part.get("text"):
            self._open_reasoning(events)
            events.append(SummaryDelta(REASONING, part["text"]))
            return
        if "functionCall" in part:
            self._on_call(events, part["functionCall"], signature)
            return
        if signature:
            self._open_reasoning(events)
            self._text_signatures.append(signature)
        if part.get("text"):
            if not self._message:
                self._message = True
                events.append(MessageStarted(MESSAGE))
            events.append(TextDelta(MESSAGE, part["text"]))

    def _on_call(self, events: list[CanonicalEvent], call: dict[str, JSON], signature: str | None) -> None:
        if signature:
            self._open_reasoning(events)  # announced before the call that needs it
        if self._message:
            self._message = False
            events.append(ItemDone(MESSAGE))
        call_id = call.get("id") or self._ids("call")
        key = f"call{self._count}"
        self._count += 1
        self._calls[call_id] = {"signature": signature, "id": bool(call.get("id"))}
        events.append(FunctionCallStarted(key, call_id, call.get("name") or ""))
        events.append(ArgumentsDelta(key, orjson.dumps(call.get("args") or {}).decode()))
        events.append(ItemDone(key))

    def _open_reasoning(self, events: list[CanonicalEvent]) -> None:
        if not self._reasoning:
            self._reasoning = True
            events.append(ReasoningStarted(REASONING))

    def _replay(self) -> dict[str, JSON] | None:
        if not any(entry["signature"] for entry in self._calls.values()) and not self._text_signatures:
            return None
        return {
            "vendor": VENDOR,
            "model": self._model,
            "calls": self._calls,
            "text_signatures": self._text_signatures,
        }


def prompt_blocked_message(reason: str) -> str:
    return f"Gemini blocked the prompt ({reason}); nothing was generated."


def reject_blocked_prompt(body: bytes) -> None:
    """A JSON reply whose prompt was blocked is the caller's problem: a 400, as OpenAI's `invalid_prompt`."""
    chunk = load_object(body)
    blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
    if blocked and not chunk.get("candidates"):
        raise InvalidRequest(prompt_blocked_message(blocked), param="input", code="invalid_prompt")


def _usage(raw: dict[str, JSON]) -> Usage:
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(raw.get("promptTokenCount") or 0),
        output_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )
