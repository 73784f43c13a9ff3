"""One async function per endpoint: parse, route, call, respond. No translation logic lives here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import TypeAdapter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from adapters.base import VendorRequest
from config.models import Settings
from gateway.auth import KeyRing, Principal
from gateway.background import BackgroundRuns, EventLog, expire_if_abandoned, follow_stored
from gateway.encoder import ResponsesEncoder
from gateway.errors import (
    InvalidRequest,
    NotFound,
    RequestTooLarge,
    RosettaError,
    StoreUnavailable,
    UnsupportedParameter,
)
from gateway.ids import new_id
from gateway.intake import (
    drop_tools,
    namespaced_names,
    parse_body,
    response_skeleton,
    to_canonical,
    wire_input,
)
from gateway.media import inline_media_urls
from gateway.relay import iter_bytes, open_upstream, read_all
from gateway.routing import Route, Router
from gateway.sealing import Sealer
from gateway.sse import encode_event
from gateway.store.base import ACTIVE, ResponseStore, StoredResponse
from gateway.stream import FinishHook, collect_response, response_events, wire_events
from schemas.canonical import InputText
from schemas.canonical import Message as CanonicalMessage
from schemas.canonical import Request as CanonicalRequest
from schemas.responses_request import CreateResponse, InputItem, ItemReferenceParam

JSON = Any
T = TypeVar("T")
_INPUT_ITEM: TypeAdapter[Any] = TypeAdapter(InputItem)
STORE_TIMEOUT = 5.0
logger = logging.getLogger(__name__)
SUMMARY_REQUEST = (
    "Summarise the conversation so far for your own later use: the user's goals, the facts, decisions and"
    " tool results established, and what remains to do. Be complete but concise; reply with the summary only."
)


@dataclass(frozen=True)
class Call:
    """A model-calling request after intake: who asks, what they sent, where it goes, as canonical."""

    principal: Principal
    body: CreateResponse
    route: Route
    history: list[JSON]
    canonical: CanonicalRequest
    dropped: tuple[str, ...]
    """Fields the gateway removed itself (`server.drop_tool_types`), before any adapter's own drops."""

    def vendor_request(self, canonical: CanonicalRequest | None = None) -> VendorRequest:
        """The route's vendor request for `canonical` (default: the call's own); its `dropped` lists every
        field left out, the gateway's own drops first, so one place reports them all."""
        request = self.route.adapter.build_request(canonical or self.canonical, self.route.target)
        return replace(request, dropped=(*self.dropped, *request.dropped))


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Gateway:
    """The state handlers share: settings, keys, routes and the upstream HTTP transport."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport, store: ResponseStore) -> None:
        self.settings = settings
        self.keys = KeyRing(settings.keys)
        self.router = Router(settings)
        self.transport = transport
        self.store = store
        self.runs = BackgroundRuns(store, settings.server.background_lease_seconds)
        key = settings.server.reasoning_key
        self.sealer = Sealer((key.get_secret_value() if key else "") or None)

    def authenticate(self, request: Request) -> Principal:
        return self.keys.authenticate(request.headers)

    async def create_response(self, request: Request) -> Response:
        """`POST /v1/responses` (public model names) and `/v5/responses` (`provider/model`)."""
        call = await self._intake(request)
        body, route, canonical = call.body, call.route, call.canonical
        encoder, input_items = self.begin(call)
        if body.background:
            return await self._start_background(call, encoder, input_items)
        save = self.saver(call.principal, input_items, len(call.history)) if body.store is not False else None
        if canonical.stream:
            live = await self.open_live(call, encoder, save)
            return StreamingResponse(
                _sse(live.events),
                media_type="text/event-stream; charset=utf-8",
                headers={**live.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                background=BackgroundTask(live.close),
            )
        vendor_request = call.vendor_request()
        upstream = await open_upstream(self.transport, vendor_request, route.adapter, route.config.timeouts)
        reply = collect_response(await read_all(upstream), route.adapter, canonical, encoder, new_id)
        if save is not None:
            await save(reply)
        return JSONResponse(reply, headers=_reply_headers(reply["id"], vendor_request.dropped))

    def begin(self, call: Call) -> tuple[ResponsesEncoder, list[JSON]]:
        """A new response for `call`: its encoder, and the input items it will be stored with."""
        skeleton = response_skeleton(call.body, call.canonical, new_id("resp"), _now())
        encoder = ResponsesEncoder(skeleton, new_id, _now, self.sealer.seal, namespaced_names(call.body))
        return encoder, [*call.history, *wire_input(call.body, new_id)]

    async def open_live(
        self,
        call: Call,
        encoder: ResponsesEncoder,
        on_finish: FinishHook | None,
        *,
        headers_reach_client: bool = True,
    ) -> LiveStream:
        """Open the upstream stream for `call` (its errors raise here, before any event exists) and give
        the response's wire events as they arrive; the caller closes it when done or gone. A field the
        adapter would drop is refused (400) where no response header can report the drop."""
        route = call.route
        vendor_request = call.vendor_request()
        if vendor_request.dropped and not headers_reach_client:
            name = vendor_request.dropped[0]
            raise UnsupportedParameter(
                f"'{name}' cannot be carried to this model, and over a WebSocket there is no response"
                " header to report dropping it: remove it, or use HTTP.",
                param=name,
            )
        upstream = await open_upstream(self.transport, vendor_request, route.adapter, route.config.timeouts)
        translator = route.adapter.open_stream(call.canonical, new_id)
        events = response_events(iter_bytes(upstream), translator, encoder, on_finish)
        headers = _reply_headers(encoder.response["id"], vendor_request.dropped)
        return LiveStream(events, upstream.aclose, headers)

    async def _intake(self, request: Request) -> Call:
        """What every model-calling HTTP endpoint does first: authenticate and read the body, then
        `prepare` it."""
        principal = self.authenticate(request)
        body = parse_body(await _read_body(request, self.settings.server.max_body_bytes))
        return await self.prepare(principal, body, by_vendor=request.scope["path"].startswith("/v5/"))

    async def prepare(
        self,
        principal: Principal,
        body: CreateResponse,
        *,
        by_vendor: bool,
        recent: Mapping[str, list[JSON]] | None = None,
    ) -> Call:
        """Route the model (`/v5` names are `provider/model`), load the `previous_response_id` chain
        (from `recent`, a connection's own responses, before the store) and build the canonical request,
        with media fetched where the provider asks for it."""
        if by_vendor:
            route = self.router.resolve_vendor(principal, body.model)
        else:
            route = self.router.resolve(principal, body.model)
        body, dropped = drop_tools(body, self.settings.server.drop_tool_types)
        history = await self._history(body.previous_response_id, principal, recent or {})
        body = await self._resolve_references(body, principal, history)
        canonical = to_canonical(body, route.target.model, route.defaults, self.sealer, history)
        if route.config.fetch_media_urls:
            canonical = await inline_media_urls(canonical, self.transport, route.config.max_media_bytes)
        return Call(principal, body, route, history, canonical, dropped)

    async def _resolve_references(
        self, body: CreateResponse, principal: Principal, history: list[JSON]
    ) -> CreateResponse:
        """Each `item_reference` input becomes the item it names: one of the chain's, else one of the team's
        stored responses' (input or output). Adapters only ever see whole items."""
        if isinstance(body.input, str) or not any(isinstance(i, ItemReferenceParam) for i in body.input):
            return body
        chain = {item["id"]: item for item in history if "id" in item}
        resolved: list[JSON] = []
        for index, item in enumerate(body.input):
            if not isinstance(item, ItemReferenceParam):
                resolved.append(item)
                continue
            found = chain.get(item.id) or await _reach(self.store.get_item(item.id, principal.team))
            if found is None:
                raise NotFound(
                    f"Item with id '{item.id}' not found. Only items of stored responses can be referenced.",
                    param=f"input[{index}].id",
                    code="item_not_found",
                )
            resolved.append(_INPUT_ITEM.validate_python(found))
        return body.model_copy(update={"input": resolved})

    async def count_input_tokens(self, request: Request) -> Response:
        """`POST /v1/responses/input_tokens`: the vendor's own count where its adapter has one, else an
        estimate of one token per four bytes of the translated request."""
        call = await self._intake(request)
        route, canonical = call.route, call.canonical
        count_request = route.adapter.build_count_request(canonical, route.target)
        if count_request is None:
            estimate = -(-len(call.vendor_request().body) // 4)
            return JSONResponse({"object": "response.input_tokens", "input_tokens": estimate})
        upstream = await open_upstream(self.transport, count_request, route.adapter, route.config.timeouts)
        count = route.adapter.parse_count(await read_all(upstream))
        return JSONResponse({"object": "response.input_tokens", "input_tokens": count})

    async def _start_background(
        self, call: Call, encoder: ResponsesEncoder, input_items: list[JSON]
    ) -> Response:
        """Store the response as `queued`, answer at once (JSON, or a stream that follows the run), and run
        it in this process. The run always streams from upstream, so any client can resume its events."""
        route, canonical = call.route, call.canonical
        streaming = canonical.model_copy(update={"stream": True})
        vendor_request = call.vendor_request(streaming)  # a 400 before anything is queued
        log = EventLog()
        started = encoder.start(queued=True)
        queued = started[0]["response"]
        await log.extend(started)
        record = StoredResponse(
            queued["id"],
            call.principal.team,
            queued,
            input_items,
            self.runs.lease_until(),
            history_length=len(call.history),
        )
        await _reach(self.store.put(record))

        async def work() -> dict[str, JSON]:
            try:
                upstream = await open_upstream(
                    self.transport, vendor_request, route.adapter, route.config.timeouts
                )
            except RosettaError as exc:
                await log.extend(encoder.fail(exc.code or "server_error", exc.message, exc))
                return encoder.response
            try:
                translator = route.adapter.open_stream(streaming, new_id)
                async for events in wire_events(iter_bytes(upstream), translator, encoder):
                    await log.extend(events)
            finally:
                await upstream.aclose()
            return encoder.response

        self.runs.start(record, work, log)
        headers = _reply_headers(queued["id"], vendor_request.dropped)
        if canonical.stream:
            return _event_stream(log.follow(-1), headers)
        return JSONResponse(queued, headers=headers)

    async def cancel_response(self, request: Request) -> Response:
        """`POST /v1/responses/{id}/cancel`: only background responses; any replica can cancel."""
        record = await self._stored(request)
        if not record.response.get("background"):
            raise InvalidRequest("Only background responses can be cancelled.", code="invalid_request")
        if record.response["status"] in ACTIVE:
            cancelled = StoredResponse(
                record.id, record.team, {**record.response, "status": "cancelled"}, record.input_items
            )
            if await _reach(self.store.put(cancelled, if_status_in=ACTIVE)):
                self.runs.cancel_local(record.id)
                record = cancelled
            else:  # it finished (or was deleted) meanwhile: say what it is now
                current = await _reach(self.store.get(record.id, record.team))
                record = current or record
        return JSONResponse(record.response)

    async def compact(self, request: Request) -> Response:
        """`POST /v1/responses/compact`: the conversation's user messages plus one `compaction` item whose
        sealed content is a summary the routed model wrote; fed back as input, it stands for the history
        (as a developer note) on any vendor. `prompt_cache_key` has no use here: dropped and reported."""
        call = await self._intake(request)
        body, route, history, canonical = call.body, call.route, call.history, call.canonical
        ask = CanonicalMessage(role="user", content=(InputText(text=SUMMARY_REQUEST),))
        summarise = canonical.model_copy(
            update={
                "stream": False,
                "prompt_cache_key": None,
                "tool_choice": "none",
                "input": (*canonical.input, ask),
            }
        )
        vendor_request = call.vendor_request(summarise)
        upstream = await open_upstream(self.transport, vendor_request, route.adapter, route.config.timeouts)
        skeleton = response_skeleton(body, summarise, new_id("resp"), _now())
        encoder = ResponsesEncoder(skeleton, new_id, _now, self.sealer.seal)
        reply = collect_response(await read_all(upstream), route.adapter, summarise, encoder, new_id)
        summary = "".join(
            part["text"]
            for item in reply["output"]
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )
        users = [
            {**item, "status": "completed"}
            for item in [*history, *wire_input(body, new_id)]
            if item.get("type") == "message" and item.get("role") == "user"
        ]
        compaction = {
            "id": new_id("cmp"),
            "type": "compaction",
            "encrypted_content": self.sealer.seal({"compaction": summary}),
            "created_by": "rosetta",
        }
        cache_key = ("prompt_cache_key",) if body.prompt_cache_key else ()
        dropped = (*vendor_request.dropped, *cache_key)
        headers = {"x-rosetta-dropped-params": ",".join(dropped)} if dropped else {}
        compacted = {
            "id": new_id("resp"),
            "object": "response.compaction",
            "created_at": _now(),
            "output": [*users, compaction],
            "usage": reply["usage"],
        }
        return JSONResponse(compacted, headers=headers)

    async def _history(
        self, previous_response_id: str | None, principal: Principal, recent: Mapping[str, list[JSON]]
    ) -> list[JSON]:
        """A chain's stored input and output, to go before the new input (not its instructions)."""
        if previous_response_id is None:
            return []
        if previous_response_id in recent:
            return recent[previous_response_id]
        record = await _reach(self.store.get(previous_response_id, principal.team))
        if record is None:
            raise NotFound(
                f"Previous response with id '{previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return [*record.input_items, *record.response["output"]]

    def saver(self, principal: Principal, input_items: list[JSON], history_length: int) -> FinishHook:
        """The hook that stores a finished response (before its terminal event goes out)."""

        async def save(response: dict[str, JSON]) -> None:
            record = StoredResponse(
                response["id"], principal.team, response, input_items, history_length=history_length
            )
            await _reach(self.store.put(record))

        return save

    async def _stored(self, request: Request) -> StoredResponse:
        principal = self.authenticate(request)
        response_id = request.path_params["response_id"]
        record = await _reach(self.store.get(response_id, principal.team))
        if record is None:
            raise NotFound(f"Response with id '{response_id}' not found.", code="response_not_found")
        return await _reach(expire_if_abandoned(self.store, record))

    async def get_response(self, request: Request) -> Response:
        """`GET /v1/responses/{id}`; with `stream=true` a background response's events after
        `starting_after`: live from its run in this process, else as its replica publishes them to the
        store (or all at once when it has finished)."""
        record = await self._stored(request)
        if request.query_params.get("stream") != "true":
            return JSONResponse(record.response)
        after_text = request.query_params.get("starting_after", "-1")
        if not after_text.lstrip("-").isdigit():
            raise InvalidRequest(
                "starting_after must be an integer.", param="starting_after", code="invalid_type"
            )
        after = int(after_text)
        log = self.runs.log(record.id)
        if log is not None:
            return _event_stream(log.follow(after), {})
        if record.events is None and record.response["status"] not in ACTIVE:
            raise InvalidRequest("Only background responses can be streamed again.", param="stream")
        return _event_stream(follow_stored(self.store, record, after), {})

    async def delete_response(self, request: Request) -> Response:
        """A background run of it in this process stops at once (on another replica, at its next write)."""
        record = await self._stored(request)
        await _reach(self.store.delete(record.id, record.team))
        self.runs.cancel_local(record.id)
        return JSONResponse({"id": record.id, "object": "response", "deleted": True})

    async def list_input_items(self, request: Request) -> Response:
        """`GET /v1/responses/{id}/input_items`, paginated as OpenAI does (`after`, `limit`, `order`)."""
        record = await self._stored(request)
        query = request.query_params
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be 'asc' or 'desc'.", param="order", code="invalid_value")
        limit_text = query.get("limit", "20")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            raise InvalidRequest(
                "limit must be an integer from 1 to 100.", param="limit", code="invalid_value"
            )
        items = record.input_items if order == "asc" else record.input_items[::-1]
        after = query.get("after")
        if after is not None:
            ids = [item.get("id") for item in items]
            if after not in ids:
                raise InvalidRequest(f"No input item with id '{after}'.", param="after", code="invalid_value")
            items = items[ids.index(after) + 1 :]
        page = items[: int(limit_text)]
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > len(page),
            }
        )

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


@dataclass(frozen=True)
class LiveStream:
    """A response being streamed from upstream: its wire event batches, and how to let go of upstream."""

    events: AsyncIterator[list[JSON]]
    close: Callable[[], Awaitable[None]]
    headers: dict[str, str]


def _reply_headers(response_id: str, dropped: Sequence[str]) -> dict[str, str]:
    headers = {"x-request-id": response_id}
    if dropped:
        headers["x-rosetta-dropped-params"] = ",".join(dropped)
    return headers


async def _sse(batches: AsyncIterator[list[JSON]]) -> AsyncIterator[bytes]:
    """Each batch in one write, so every event reaches the client whole."""
    async for batch in batches:
        yield b"".join(encode_event(event) for event in batch)


def _event_stream(batches: AsyncIterator[list[JSON]], headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(
        _sse(batches),
        media_type="text/event-stream; charset=utf-8",
        headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _reach(call: Awaitable[T]) -> T:
    """A store call; a store that cannot be reached is this request's 503, never a hang or a 500."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):  # unlike wait_for, no task per call
            return await call
    except RosettaError:
        raise
    except Exception as exc:
        logger.warning("response store unavailable: %s", type(exc).__name__)
        raise StoreUnavailable("The response store cannot be reached right now; try again.") from None


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
