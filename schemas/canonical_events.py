"""Canonical stream events: what every adapter's translator emits, and the encoder consumes.

Adapters describe *what happened* upstream (an item started, text arrived, the turn ended); the encoder
(`gateway.encoder`) alone decides sequence numbers, output/content indexes, item ids and the
`.added`/`.done` pairing. `key` is the adapter's own name for an item (e.g. a Chat tool-call index), so
several items may be open at once.

Frozen slotted dataclasses, not pydantic: one is made per token and none needs validating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

StopReason = Literal["stop", "length", "content_filter"]
"""Why the upstream turn ended: `stop` covers natural ends, stop sequences and tool calls."""


@dataclass(frozen=True, slots=True)
class MessageStarted:
    key: str


@dataclass(frozen=True, slots=True)
class FunctionCallStarted:
    key: str
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class ReasoningStarted:
    key: str
    encrypted_content: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class SummaryDelta:
    """Reasoning summary text; a new `part` number starts a new summary paragraph."""

    key: str
    text: str
    part: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningTextDelta:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class ArgumentsDelta:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class ItemDone:
    """Closes an item.

    For a reasoning item, `replay` is vendor data the adapter needs back verbatim on a later turn (the
    gateway seals it into `encrypted_content`); `encrypted_content` is an upstream's own opaque token.
    """

    key: str
    encrypted_content: str | None = None
    replay: Any = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageReported:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    reason: StopReason = "stop"


@dataclass(frozen=True, slots=True)
class Failed:
    """The upstream failed after the stream started (e.g. an error event mid-stream)."""

    code: str
    message: str


CanonicalEvent = (
    MessageStarted
    | FunctionCallStarted
    | ReasoningStarted
    | TextDelta
    | RefusalDelta
    | SummaryDelta
    | ReasoningTextDelta
    | ArgumentsDelta
    | ItemDone
    | UsageReported
    | Finished
    | Failed
)
