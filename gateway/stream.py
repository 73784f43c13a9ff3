"""The one driver loop: upstream bytes → SSE messages → canonical events → Responses wire events.

Handlers and tests share it. Each upstream chunk's events are joined into one write, so every event
reaches the client whole in a single write (some SSE parsers drop an event split across reads), and
nothing is held back beyond the chunk that produced it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from adapters.base import Adapter, IdMinter, StreamTranslator
from gateway.encoder import ResponsesEncoder, WireEvent
from gateway.errors import RosettaError
from gateway.sse import SSEDecoder, SSEMessage, encode_event
from schemas.canonical import Request
from schemas.canonical_events import CanonicalEvent

logger = logging.getLogger(__name__)


def _encode(events: Iterable[WireEvent]) -> bytes:
    return b"".join(encode_event(event) for event in events)


def _translate(
    messages: list[SSEMessage], translator: StreamTranslator, encoder: ResponsesEncoder
) -> list[WireEvent]:
    out: list[WireEvent] = []
    for message in messages:
        for event in translator.feed(message):
            out.extend(encoder.feed(event))
            if encoder.finished:
                return out
    return out


FinishHook = Callable[[dict[str, Any]], Awaitable[None]]
"""Runs with the final Response object before its terminal event is written (the store's moment)."""


async def translate_stream(
    chunks: AsyncIterator[bytes],
    translator: StreamTranslator,
    encoder: ResponsesEncoder,
    on_finish: FinishHook | None = None,
) -> AsyncIterator[bytes]:
    """Yield SSE bytes for one response; always ends with exactly one terminal event."""
    async for events in response_events(chunks, translator, encoder, on_finish):
        yield _encode(events)


async def response_events(
    chunks: AsyncIterator[bytes],
    translator: StreamTranslator,
    encoder: ResponsesEncoder,
    on_finish: FinishHook | None = None,
) -> AsyncIterator[list[WireEvent]]:
    """Every wire event of one response, in batches (the opening events, then one per upstream chunk);
    `on_finish` runs before the batch holding the terminal event is handed out."""
    yield encoder.start()
    async for events in wire_events(chunks, translator, encoder):
        if encoder.finished and on_finish is not None:
            try:
                await on_finish(encoder.response)
            except RosettaError as exc:  # the reply is whole: deliver it; only later chains will miss it
                logger.warning("response %s was not stored: %s", encoder.response["id"], exc.message)
        yield events
        if encoder.finished:
            return


async def wire_events(
    chunks: AsyncIterator[bytes], translator: StreamTranslator, encoder: ResponsesEncoder
) -> AsyncIterator[list[WireEvent]]:
    """Batches of wire events, one per upstream chunk; failures become the terminal `response.failed`."""
    decoder = SSEDecoder()
    try:
        async for chunk in chunks:
            events = _translate(decoder.feed(chunk), translator, encoder)
            if events:
                yield events
            if encoder.finished:
                return
        tail = _translate(decoder.flush(), translator, encoder)
        if not encoder.finished:
            for event in translator.finish():
                tail.extend(encoder.feed(event))
            tail.extend(encoder.finish())
        yield tail
    except RosettaError as exc:
        yield encoder.fail(exc.code or "server_error", exc.message, exc)
    except UnicodeDecodeError:
        yield encoder.fail("upstream_protocol_error", "The upstream sent bytes that are not UTF-8.")
    except Exception:
        logger.exception("stream translation failed")
        yield encoder.fail("server_error", "The gateway failed while relaying the stream.")


def collect_response(
    body: bytes, adapter: Adapter, request: Request, encoder: ResponsesEncoder, ids: IdMinter
) -> dict[str, Any]:
    """A non-streaming reply through the same encoder, so JSON and SSE replies carry identical objects."""
    events: list[CanonicalEvent] = adapter.parse_response(body, request, ids)
    encoder.start()
    for event in events:
        encoder.feed(event)
        if encoder.finished:
            break
    encoder.finish()
    return encoder.response
