"""`create_app(settings)`: the Starlette app, its routes, error rendering and lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from config.models import Settings
from gateway.errors import InternalError, InvalidRequest, NotFound, RosettaError
from gateway.handlers import Gateway, JSONResponse
from gateway.relay import create_transport
from gateway.store import open_store, purge_periodically
from gateway.websocket import responses_socket

logger = logging.getLogger(__name__)


def error_response(exc: RosettaError, status: int | None = None) -> Response:
    return JSONResponse(exc.body(), status_code=status or exc.status, headers=exc.headers)


async def _on_rosetta_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RosettaError)
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the OpenAI error shape, like every other error."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"Unknown path {request.url.path}.", code="unknown_url"))
    return error_response(InvalidRequest(exc.detail), status=exc.status_code)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s", request.url.path)
    return error_response(InternalError("The gateway hit an internal error."))


def create_app(settings: Settings) -> Starlette:
    """The upstream transport's connections open lazily inside the serving loop and close at shutdown."""
    gateway = Gateway(
        settings, create_transport(settings.server.upstream_transport), open_store(settings.store)
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        purging = asyncio.create_task(purge_periodically(gateway.store))
        try:
            yield
        finally:
            purging.cancel()
            await asyncio.wait([purging])
            await gateway.runs.close()
            await gateway.transport.aclose()
            await gateway.store.close()

    stored = [
        route
        for prefix in ("/v1", "/v5")
        for route in (
            Route(prefix + "/responses/{response_id}", gateway.get_response, methods=["GET"]),
            Route(prefix + "/responses/{response_id}", gateway.delete_response, methods=["DELETE"]),
            Route(prefix + "/responses/{response_id}/input_items", gateway.list_input_items, methods=["GET"]),
            Route(prefix + "/responses/{response_id}/cancel", gateway.cancel_response, methods=["POST"]),
        )
    ]

    async def socket(websocket: WebSocket) -> None:
        await responses_socket(gateway, websocket)

    app = Starlette(
        routes=[
            Route("/v1/responses", gateway.create_response, methods=["POST"]),
            Route("/v5/responses", gateway.create_response, methods=["POST"]),
            WebSocketRoute("/v1/responses", socket),
            WebSocketRoute("/v5/responses", socket),
            Route("/v1/responses/input_tokens", gateway.count_input_tokens, methods=["POST"]),
            Route("/v1/responses/compact", gateway.compact, methods=["POST"]),
            Route("/v5/responses/compact", gateway.compact, methods=["POST"]),
            Route("/v5/responses/input_tokens", gateway.count_input_tokens, methods=["POST"]),
            *stored,
            Route("/v1/models", gateway.list_models, methods=["GET"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={
            RosettaError: _on_rosetta_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
    )
    app.state.gateway = gateway
    return app
