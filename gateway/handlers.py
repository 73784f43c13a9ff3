"""One async function per endpoint: parse, route, call, respond. No translation logic lives here."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from config.models import Settings
from gateway.auth import KeyRing, Principal
from gateway.encoder import ResponsesEncoder
from gateway.errors import InvalidRequest, RequestTooLarge
from gateway.ids import new_id
from gateway.intake import parse_body, response_skeleton, to_canonical
from gateway.media import inline_media_urls
from gateway.relay import iter_bytes, open_upstream, read_all
from gateway.routing import Router
from gateway.sealing import Sealer
from gateway.stream import collect_response, translate_stream


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Gateway:
    """The state handlers share: settings, keys, routes and the upstream HTTP transport."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport) -> None:
        self.settings = settings
        self.keys = KeyRing(settings.keys)
        self.router = Router(settings)
        self.transport = transport
        key = settings.server.reasoning_key
        self.sealer = Sealer((key.get_secret_value() if key else "") or None)

    def authenticate(self, request: Request) -> Principal:
        return self.keys.authenticate(request.headers)

    async def create_response(self, request: Request) -> Response:
        """`POST /v1/responses` (public model names) and `/v5/responses` (`provider/model`)."""
        principal = self.authenticate(request)
        raw = await _read_body(request, self.settings.server.max_body_bytes)
        body = parse_body(raw)
        if request.scope["path"].startswith("/v5/"):
            route = self.router.resolve_vendor(principal, body.model)
        else:
            route = self.router.resolve(principal, body.model)
        canonical = to_canonical(body, route.target.model, route.defaults, self.sealer)
        if route.config.fetch_media_urls:
            canonical = await inline_media_urls(canonical, self.transport, route.config.max_media_bytes)
        vendor_request = route.adapter.build_request(canonical, route.target)
        upstream = await open_upstream(self.transport, vendor_request, route.adapter, route.config.timeouts)
        response_id = new_id("resp")
        skeleton = response_skeleton(body, canonical, response_id, _now())
        encoder = ResponsesEncoder(skeleton, new_id, _now, self.sealer.seal)
        headers = {"x-request-id": response_id}
        if vendor_request.dropped:
            headers["x-rosetta-dropped-params"] = ",".join(vendor_request.dropped)
        if canonical.stream:
            translator = route.adapter.open_stream(canonical, new_id)
            return StreamingResponse(
                translate_stream(iter_bytes(upstream), translator, encoder),
                media_type="text/event-stream; charset=utf-8",
                headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                background=BackgroundTask(upstream.aclose),
            )
        reply = collect_response(await read_all(upstream), route.adapter, canonical, encoder, new_id)
        return JSONResponse(reply, headers=headers)

    async def list_models(self, request: Request) -> Response:
        self.authenticate(request)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "rosetta"}
            for name in self.router.public_models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        return JSONResponse({"status": "ready", "models": len(self.router.public_models)})


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing (413) as soon as it exceeds the configured limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body exceeds the gateway's limit of {limit} bytes.")


def _now() -> int:
    return int(time.time())
