"""Anthropic Messages (`POST /v1/messages`, JSON and SSE): Claude, and servers that speak it (llama.cpp).

Split in three: `options` (per-provider settings), `request` (canonical → Messages body) and `reply`
(Messages JSON and stream → canonical events). Reference: shared/reference/anthropic-messages.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from adapters._common import error_object, load_object
from adapters.anthropic.options import AnthropicOptions, parse_anthropic_options
from adapters.anthropic.reply import AnthropicStreamTranslator, message_as_stream
from adapters.anthropic.request import build_body
from adapters.base import IdMinter, UpstreamTarget, VendorRequest
from gateway.errors import RosettaError, upstream_error
from gateway.sse import SSEMessage
from schemas import canonical as c
from schemas.canonical_events import CanonicalEvent

__all__ = ["AnthropicAdapter", "build_anthropic"]

_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking")


@dataclass(frozen=True)
class AnthropicAdapter:
    options: AnthropicOptions

    def build_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest:
        body, dropped = build_body(request, target.model, self.options)
        headers = {
            "Content-Type": "application/json",
            "anthropic-version": self.options.version,
            **target.headers,
        }
        if self.options.beta:
            headers["anthropic-beta"] = ",".join(self.options.beta)
        if target.api_key:
            headers["x-api-key"] = target.api_key
        url = target.base_url.rstrip("/") + "/messages"
        return VendorRequest("POST", url, orjson.dumps(body), request.stream, headers, dropped)

    def build_count_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest:
        """`POST /v1/messages/count_tokens` takes the message body without the generation settings."""
        full = self.build_request(request, target)
        body = {key: value for key, value in orjson.loads(full.body).items() if key in _COUNTED}
        return VendorRequest("POST", full.url + "/count_tokens", orjson.dumps(body), False, full.headers)

    def parse_count(self, body: bytes) -> int:
        return int(load_object(body).get("input_tokens") or 0)

    def parse_response(self, body: bytes, request: c.Request, ids: IdMinter) -> list[CanonicalEvent]:
        """The whole message replayed as the stream it would have been: one translation for both."""
        translator = self.open_stream(request, ids)
        events: list[CanonicalEvent] = []
        for event_type, data in message_as_stream(body):
            events += translator.feed(SSEMessage(data=orjson.dumps(data).decode(), event=event_type))
        return events + translator.finish()

    def parse_error(self, status: int, body: bytes, retry_after: str | None) -> RosettaError:
        err = error_object(body)
        message = str(err.get("message") or f"Upstream returned HTTP {status}.")
        code = str(err["type"]) if isinstance(err.get("type"), str) else None
        return upstream_error(status, message, code=code, retry_after=retry_after)

    def open_stream(self, request: c.Request, ids: IdMinter) -> AnthropicStreamTranslator:
        return AnthropicStreamTranslator(request, self.options)


def build_anthropic(options: Mapping[str, Any]) -> AnthropicAdapter:
    return AnthropicAdapter(parse_anthropic_options(options))
