"""The Responses API over one WebSocket: `/v1/responses` and `/v5/responses`, upgraded, as OpenAI defines it.

The client sends `response.create` messages (the create body plus `"type"`, without `stream` or
`background`); each is answered with the events an SSE stream would carry, one JSON text frame each.
An error before a response exists is one `{"type": "error", "status", "error"}` frame and the connection
stays open; after, the response ends `failed` exactly as over HTTP.

Turns run one at a time per lane, first in first out: a message's `stream_id` names its lane (echoed on
every event of its response), and messages without one share the default lane. The connection remembers
its own recent responses, `store: false` ones included, so a turn can continue one with
`previous_response_id` and only its new input; a turn that fails forgets the response it continued, so
nothing builds on a chain the failure may have left half-applied. A connection lives at most
`server.websocket_max_seconds`, then ends with `websocket_connection_limit_reached`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from gateway.auth import Principal
from gateway.errors import InternalError, InvalidRequest, RateLimited, RequestTooLarge, RosettaError
from gateway.handlers import Call, Gateway, JSONResponse, LiveStream
from gateway.intake import parse_fields
from schemas.canonical_events import Finished

JSON = Any
RECENT_LIMIT = 32
"""Responses a connection remembers for `previous_response_id` besides each lane's latest (OpenAI keeps
the latest one)."""
MAX_LANES = 16
"""`stream_id` lanes with turns queued or running, per connection."""
MAX_QUEUED = 32
"""Turns waiting in one lane."""
logger = logging.getLogger(__name__)


class RecentResponses:
    """A connection's own latest responses: id → the items a continuation puts before its input.

    The latest response of each recently used lane is kept whatever the others do (a lane idling while
    another runs many turns can still go on); of the rest, the `limit` most recently made or continued."""

    def __init__(self, limit: int = RECENT_LIMIT) -> None:
        self.items: OrderedDict[str, list[JSON]] = OrderedDict()
        self._limit = limit
        self._latest: OrderedDict[str | None, str] = OrderedDict()

    def remember(self, response_id: str, items: list[JSON], lane: str | None) -> None:
        self.items[response_id] = items
        self._latest[lane] = response_id
        self._latest.move_to_end(lane)
        while len(self._latest) > 2 * MAX_LANES:
            self._latest.popitem(last=False)
        kept = set(self._latest.values())
        others = [key for key in self.items if key not in kept]  # oldest first
        for old in others[: max(0, len(others) - self._limit)]:
            del self.items[old]

    def touch(self, response_id: str | None) -> None:
        if response_id is not None and response_id in self.items:
            self.items.move_to_end(response_id)

    def forget(self, response_id: str | None) -> None:
        if response_id is not None:
            self.items.pop(response_id, None)


class ResponsesSocket:
    """One accepted connection, acting for one principal."""

    def __init__(self, gateway: Gateway, websocket: WebSocket, principal: Principal) -> None:
        self._gateway = gateway
        self._websocket = websocket
        self._principal = principal
        self._by_vendor = websocket.scope["path"].startswith("/v5/")
        self._recent = RecentResponses()
        self._lanes: dict[str | None, asyncio.Queue[dict[str, JSON]]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._sending = asyncio.Lock()

    async def serve(self) -> None:
        """Read messages until the client leaves or the connection's time is up; a client that leaves
        cancels its turns in flight (and with them their upstream requests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._gateway.settings.server.websocket_max_seconds
        try:
            while True:
                try:
                    message = await asyncio.wait_for(self._websocket.receive(), deadline - loop.time())
                except TimeoutError:
                    await self._time_is_up()
                    return
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    text = (message.get("bytes") or b"").decode("utf-8", "replace")
                await self._dispatch(text)
        except (WebSocketDisconnect, WebSocketDisconnected):
            return  # gone while we answered a message
        finally:
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def _time_is_up(self) -> None:
        """Say why, then close: turns still running end with the connection."""
        limit = self._gateway.settings.server.websocket_max_seconds
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            await self._error(
                InvalidRequest(
                    f"This WebSocket connection reached its {limit:g}-second limit; open a new one to go on.",
                    code="websocket_connection_limit_reached",
                ),
                None,
            )
            await self._websocket.close(code=1000)

    async def _dispatch(self, text: str) -> None:
        """Check the envelope and queue the turn on its lane."""
        if len(text.encode()) > self._gateway.settings.server.max_body_bytes:
            limit = self._gateway.settings.server.max_body_bytes
            await self._error(
                RequestTooLarge(f"The message exceeds the gateway's limit of {limit} bytes."), None
            )
            return
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._error(
                InvalidRequest("We could not parse the JSON message. Send valid JSON.", code="invalid_json"),
                None,
            )
            return
        if not isinstance(data, dict) or data.get("type") != "response.create":
            kind = data.get("type") if isinstance(data, dict) else None
            await self._error(
                InvalidRequest(
                    f"Unsupported event type {kind!r}: this gateway accepts 'response.create'.",
                    param="type",
                    code="invalid_value",
                ),
                None,
            )
            return
        lane = data.get("stream_id")
        if lane is not None and not isinstance(lane, str):
            await self._error(
                InvalidRequest("'stream_id' must be a string.", param="stream_id", code="invalid_type"), None
            )
            return
        queue = self._lanes.get(lane)
        if queue is None and len(self._lanes) >= MAX_LANES:
            await self._error(
                RateLimited(f"At most {MAX_LANES} lanes may be busy at once on one connection."), lane
            )
            return
        if queue is not None and queue.qsize() >= MAX_QUEUED:
            await self._error(RateLimited(f"At most {MAX_QUEUED} turns may wait in one lane."), lane)
            return
        if queue is None:
            queue = self._lanes[lane] = asyncio.Queue()
            worker = asyncio.create_task(self._work(lane, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.put_nowait(data)

    async def _work(self, lane: str | None, queue: asyncio.Queue[dict[str, JSON]]) -> None:
        """Run the lane's turns in order; an empty lane ends (a later message starts it again)."""
        while not queue.empty():
            data = queue.get_nowait()
            try:
                await self._turn(data, lane)
            except (WebSocketDisconnect, WebSocketDisconnected):
                return  # the client left mid-turn; the reader sees it too and ends the connection
            except Exception:  # a bug: report it, and keep the lane serving
                logger.exception("WebSocket turn failed")
                await self._error(InternalError("The gateway hit an internal error."), lane)
        del self._lanes[lane]

    async def _turn(self, data: dict[str, JSON], lane: str | None) -> None:
        """One `response.create`: its events, or one error frame if it fails before starting."""
        previous = data.get("previous_response_id")
        try:
            call, generate = await self._prepare(data)
            live = await self._open(call, generate, lane)
        except RosettaError as exc:
            self._recent.forget(previous if isinstance(previous, str) else None)
            await self._error(exc, lane)
            return
        try:
            async for batch in live.events:
                await self._send(batch, lane)
        finally:
            await live.close()

    async def _prepare(self, data: dict[str, JSON]) -> tuple[Call, bool]:
        fields = {k: v for k, v in data.items() if k not in ("type", "stream_id", "generate")}
        generate = data.get("generate", True)
        if not isinstance(generate, bool):
            raise InvalidRequest("'generate' must be a boolean.", param="generate", code="invalid_type")
        if fields.pop("background", None):
            raise InvalidRequest("Background responses are not supported over WebSocket.", param="background")
        if fields.pop("stream", None) not in (None, True):
            raise InvalidRequest("Responses over WebSocket are always streamed.", param="stream")
        body = parse_fields({**fields, "stream": True})
        return await self._gateway.prepare(
            self._principal, body, by_vendor=self._by_vendor, recent=self._recent.items
        ), generate

    async def _open(self, call: Call, generate: bool, lane: str | None) -> LiveStream:
        """The response's events; with `generate: false`, a response with no output, only to chain on."""
        encoder, input_items = self._gateway.begin(call)
        previous = call.body.previous_response_id
        self._recent.touch(previous)
        # A chain from this connection's memory may never have been stored: index all of its items.
        indexed = 0 if previous in self._recent.items else len(call.history)
        save = (
            self._gateway.saver(self._principal, input_items, indexed)
            if call.body.store is not False
            else None
        )

        async def finish(response: dict[str, JSON]) -> None:
            if response["status"] == "failed":
                self._recent.forget(previous)
            else:
                self._recent.remember(response["id"], [*input_items, *response["output"]], lane)
            if save is not None:
                await save(response)

        if generate:
            return await self._gateway.open_live(call, encoder, finish, headers_reach_client=False)

        async def prepared_only() -> AsyncIterator[list[JSON]]:
            yield encoder.start()
            encoder.feed(Finished())
            done = encoder.finish()
            try:
                await finish(encoder.response)
            except RosettaError as exc:
                logger.warning("response %s was not stored: %s", encoder.response["id"], exc.message)
            yield done

        return LiveStream(prepared_only(), _nothing, {})

    async def _send(self, events: list[JSON], stream_id: str | None) -> None:
        async with self._sending:
            for event in events:
                if stream_id is not None:
                    event = {**event, "stream_id": stream_id}
                await self._websocket.send_text(orjson.dumps(event).decode())

    async def _error(self, exc: RosettaError, stream_id: str | None) -> None:
        frame: dict[str, JSON] = {"type": "error", "status": exc.status, **exc.body()}
        await self._send([frame], stream_id)


async def _nothing() -> None:
    return None


async def responses_socket(gateway: Gateway, websocket: WebSocket) -> None:
    """Authenticate the upgrade (a refused key is a plain HTTP 401 in OpenAI's error shape where the server
    allows it, else a policy close), then serve the connection."""
    try:
        principal = gateway.keys.authenticate(websocket.headers)
    except RosettaError as exc:
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status))
        else:
            await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.accept()
    await ResponsesSocket(gateway, websocket, principal).serve()
