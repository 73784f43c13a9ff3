"""Google Gemini (`generateContent` / `streamGenerateContent?alt=sse`).

Split in four: `options`, `schema` (JSON Schema narrowing), `request` (canonical → body) and `reply`
(chunks → canonical events). Reference: shared/reference/gemini.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from adapters._common import error_object, load_object
from adapters.base import IdMinter, UpstreamTarget, VendorRequest
from adapters.gemini.options import GeminiOptions, parse_gemini_options
from adapters.gemini.reply import GeminiStreamTranslator, reject_blocked_prompt
from adapters.gemini.request import build_body
from gateway.errors import RosettaError, upstream_error
from gateway.sse import SSEMessage
from schemas import canonical as c
from schemas.canonical_events import CanonicalEvent

__all__ = ["GeminiAdapter", "build_gemini"]

_STATUS = {"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504, "INVALID_ARGUMENT": 400}


@dataclass(frozen=True)
class GeminiAdapter:
    options: GeminiOptions

    def build_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest:
        body, dropped = build_body(request, target.model, self.options)
        headers = {"Content-Type": "application/json", **target.headers}
        if target.api_key:
            headers["x-goog-api-key"] = target.api_key
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        url = f"{target.base_url.rstrip('/')}/models/{target.model}:{method}"
        return VendorRequest("POST", url, orjson.dumps(body), request.stream, headers, dropped)

    def build_count_request(self, request: c.Request, target: UpstreamTarget) -> VendorRequest:
        """`:countTokens` with the whole request, so system instruction and tools count too."""
        full = self.build_request(request.model_copy(update={"stream": False}), target)
        content = orjson.loads(full.body)
        content.pop("generationConfig", None)
        body = {"generateContentRequest": {"model": f"models/{target.model}", **content}}
        url = full.url.replace(":generateContent", ":countTokens")
        return VendorRequest("POST", url, orjson.dumps(body), False, full.headers)

    def parse_count(self, body: bytes) -> int:
        return int(load_object(body).get("totalTokens") or 0)

    def parse_response(self, body: bytes, request: c.Request, ids: IdMinter) -> list[CanonicalEvent]:
        reject_blocked_prompt(body)
        translator = self.open_stream(request, ids)
        return translator.feed(SSEMessage(data=body.decode())) + translator.finish()

    def parse_error(self, status: int, body: bytes, retry_after: str | None) -> RosettaError:
        err = error_object(body)
        message = str(err.get("message") or f"Upstream returned HTTP {status}.")
        code = str(err["status"]) if isinstance(err.get("status"), str) else None
        reasons = {d.get("reason") for d in err.get("details") or [] if isinstance(d, dict)}
        if "API_KEY_INVALID" in reasons:
            status = 401  # Gemini reports a bad key as a 400; it is our credential, not the caller's
        else:
            status = _STATUS.get(code or "", status)
        return upstream_error(status, message, code=code, retry_after=retry_after)

    def open_stream(self, request: c.Request, ids: IdMinter) -> GeminiStreamTranslator:
        return GeminiStreamTranslator(request, ids)


def build_gemini(options: Mapping[str, Any]) -> GeminiAdapter:
    return GeminiAdapter(parse_gemini_options(options))
