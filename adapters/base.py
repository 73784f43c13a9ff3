"""The contract between the gateway and a vendor adapter.

Adapters are pure translation, sans-I/O (h11 style): they turn a canonical `Request` into a
`VendorRequest` and vendor bytes into canonical events, but never open sockets, read clocks or draw
random numbers. That keeps every adapter testable from recorded bytes; transport lives in `gateway.relay`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import RosettaError
from gateway.sse import SSEMessage
from schemas.canonical import Request
from schemas.canonical_events import CanonicalEvent

IdMinter = Callable[[str], str]
"""`prefix → fresh id` (`call` → `call_9f2c…`); injected by the gateway, predictable in tests."""


@dataclass(frozen=True)
class UpstreamTarget:
    """Where one request goes: the provider's endpoint and credentials plus the upstream model name."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class VendorRequest:
    """An HTTP request ready to send. Headers carry credentials, so they never appear in its repr."""

    method: str
    url: str
    body: bytes
    stream: bool
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    dropped: tuple[str, ...] = ()
    """Request fields the upstream cannot carry that the adapter dropped by design (reported to the
    client in the `x-rosetta-dropped-params` header, never silently)."""


class StreamTranslator(Protocol):
    """Turns one upstream stream, message by message, into canonical events. One instance per request."""

    def feed(self, message: SSEMessage) -> list[CanonicalEvent]: ...

    def finish(self) -> list[CanonicalEvent]: ...


class Adapter(Protocol):
    """One vendor protocol. Built per provider from its dialect options (see `adapters.ADAPTERS`)."""

    def build_request(self, request: Request, target: UpstreamTarget) -> VendorRequest: ...

    def parse_response(self, body: bytes, request: Request, ids: IdMinter) -> list[CanonicalEvent]:
        """A whole non-streaming reply, as the same canonical events a stream would give.

        Returning events rather than a finished object means JSON replies and streams pass through the
        one encoder, so both carry identical items, ids, statuses and usage.
        """
        ...

    def parse_error(self, status: int, body: bytes, retry_after: str | None) -> RosettaError: ...

    def build_count_request(self, request: Request, target: UpstreamTarget) -> VendorRequest | None:
        """The vendor's own input-token count request, or None when it has none (the gateway estimates)."""
        ...

    def parse_count(self, body: bytes) -> int: ...

    def open_stream(self, request: Request, ids: IdMinter) -> StreamTranslator:
        """`ids` mints ids the vendor does not send (e.g. Gemini call ids), keeping adapters free of
        randomness of their own."""
        ...
