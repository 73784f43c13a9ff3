"""Machinery shared by the fake upstreams (Chat Completions, Anthropic Messages).

Why a shared module: every fake must behave the same way on the transport
side, so that a test can swap one upstream dialect for another without
learning a new API. They all record each request before validating it, write
their reply in deterministic random pieces (so SSE parsers meet arbitrary
chunk boundaries), notice a client that hangs up mid-reply, and let a test wait
for that asynchronously. Only the vendor dialect differs, and that lives in
each fake's own module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

__all__ = [
    "FakeUpstream",
    "RecordedRequest",
    "Reply",
    "ReplyResponse",
    "Scenario",
    "json_reply",
    "sse_reply",
]

_SSE: Final = "text/event-stream; charset=utf-8"
_JSON: Final = "application/json"
_ALNUM: Final = string.ascii_letters + string.digits


# --------------------------------------------------------------------------------------------- data


@dataclass
class RecordedRequest:
    """One HTTP request as the fake received it, recorded before any validation.

    ``headers`` keys are lower-case (repeated headers are joined with ``", "``).
    ``body`` is the parsed JSON body, or ``None`` when the body was not JSON.
    ``disconnected`` becomes true if the client went away before the reply
    was complete (read it after the fake's ``wait_for_disconnects``).
    ``query`` is the raw query string without ``?`` (Gemini puts ``alt=sse``
    and sometimes ``key=`` there).
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: Any
    disconnected: bool = False
    query: str = ""

    @property
    def model(self) -> str | None:
        """The upstream ``model`` field, if the body had one."""
        if isinstance(self.body, dict):
            model = self.body.get("model")
            return model if isinstance(model, str) else None
        return None

    @property
    def stream(self) -> bool:
        """Whether the body asked for SSE (``"stream": true``)."""
        return isinstance(self.body, dict) and self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        """Whether the body asked for the trailing usage chunk (``stream_options.include_usage``)."""
        if not isinstance(self.body, dict):
            return False
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


@dataclass(frozen=True)
class Reply:
    """What the fake sends back: status, headers and the exact body bytes.

    ``delay`` waits before the status line (aborted early if the client
    disconnects); ``hang`` sends ``body`` and then keeps the response open
    until the client disconnects. ``content-length`` is added automatically
    for non-SSE replies unless given in ``headers``.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False

    @property
    def is_sse(self) -> bool:
        """True for ``text/event-stream`` replies (sent chunked, without a length)."""
        return any(
            k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in self.headers.items()
        )


#: How a model name maps to a reply: a fixture case name (``"tool_call"``), a
#: fixed :class:`Reply`, or a function of the recorded request.
Scenario: TypeAlias = str | Reply | Callable[[RecordedRequest], Reply]


def sse_reply(body: bytes, *, headers: Mapping[str, str] | None = None, hang: bool = False) -> Reply:
    """A 200 ``text/event-stream`` reply with ``body`` sent verbatim."""
    return Reply(200, body, {"content-type": _SSE, **(headers or {})}, hang=hang)


def json_reply(body: bytes | Any, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Reply:
    """A JSON reply; ``body`` is sent verbatim if bytes, else serialised like OpenAI (2-space indent)."""
    if not isinstance(body, bytes):
        body = (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()
    return Reply(status, body, {"content-type": _JSON, **(headers or {})})


# --------------------------------------------------------------------------------------------- helpers


def _token(seed: str, length: int) -> str:
    """Deterministic alphanumeric id material, so recorded runs are reproducible."""
    digest = hashlib.sha256(seed.encode()).digest()
    rng = random.Random(digest)
    return "".join(rng.choice(_ALNUM) for _ in range(length))


def _fake_arguments(parameters: Any) -> dict[str, Any]:
    """Arguments satisfying the schema's ``required`` list: strings are "Paris" (or the first enum value)."""
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = parameters.get("required")
    args: dict[str, Any] = {}
    for name in required if isinstance(required, list) else []:
        schema = properties.get(name)
        schema = schema if isinstance(schema, dict) else {}
        kind = schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            args[name] = enum[0]
        elif "integer" in kinds or "number" in kinds:
            args[name] = 1
        elif "boolean" in kinds:
            args[name] = True
        elif "array" in kinds:
            args[name] = []
        elif "object" in kinds:
            args[name] = {}
        else:
            args[name] = "Paris"
    return args


def _split(text: str, parts: int) -> list[str]:
    """Split ``text`` into ``parts`` contiguous, non-empty fragments (fewer if it is short)."""
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(text[start:end])
        start = end
    return out


async def _wait_disconnect(receive: Receive) -> None:
    """Return once the ASGI server reports that the client went away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


# --------------------------------------------------------------------------------------------- base


class FakeUpstream:
    """What every fake upstream shares: the request log, disconnect counting and chunked writes.

    Subclasses give their routes (``_routes``) and default scenarios (``_default_scenarios``) and the
    vendor's policy; the object itself is the ASGI app. Tests read ``requests``
    (:class:`RecordedRequest` list, in arrival order), ``last_request`` and
    ``disconnects``, and call ``reset()`` between tests. ``chunk_size`` (an
    ``int`` or an inclusive ``(low, high)`` byte range) and ``write_delay``
    may be changed between requests.
    """

    def __init__(
        self,
        scenarios: Mapping[str, Scenario] | None,
        *,
        api_key: str | None,
        chunk_size: int | tuple[int, int],
        write_delay: float,
        slow_seconds: float,
        seed: int,
        validate: bool,
        fixtures_dir: Path,
    ) -> None:
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.validate = validate
        self.fixtures_dir = fixtures_dir
        self.chunk_size = (chunk_size, chunk_size) if isinstance(chunk_size, int) else chunk_size
        if not 1 <= self.chunk_size[0] <= self.chunk_size[1]:
            raise ValueError(f"bad chunk_size {chunk_size!r}")
        self.write_delay = write_delay
        self.seed = seed
        self.requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._changed = threading.Condition()
        self.scenarios: dict[str, Scenario] = {**self._default_scenarios(), **(scenarios or {})}
        self.app = Starlette(routes=self._routes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def _default_scenarios(self) -> dict[str, Scenario]:
        raise NotImplementedError

    @property
    def disconnects(self) -> int:
        """How many replies the client abandoned before they were complete."""
        with self._changed:
            return self._disconnects

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (raises if none arrived)."""
        if not self.requests:
            raise AssertionError("the fake upstream received no request")
        return self.requests[-1]

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``disconnects >= count``; return whether that happened in time.

        The server notices a closed socket asynchronously, so assert through this
        (or :meth:`until_disconnects`) rather than reading ``disconnects`` at once.
        """
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= count, timeout)

    async def until_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Async twin of :meth:`wait_for_disconnects` that does not block the caller's loop."""
        deadline = time.monotonic() + timeout
        while self.disconnects < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def reset(self) -> None:
        """Forget recorded requests and disconnects (scenarios are kept)."""
        with self._changed:
            self.requests.clear()
            self._disconnects = 0

    def _note_disconnect(self, record: RecordedRequest) -> None:
        with self._changed:
            record.disconnected = True
            self._disconnects += 1
            self._changed.notify_all()

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        record = RecordedRequest(
            len(self.requests), request.method, request.url.path, headers, raw, body, query=request.url.query
        )
        self.requests.append(record)
        return record

    def pieces(self, body: bytes, index: int) -> Iterator[bytes]:
        """Split ``body`` into the pieces the fake writes for request ``index`` (deterministic)."""
        rng = random.Random(f"{self.seed}:{index}:pieces")
        low, high = self.chunk_size
        start = 0
        while start < len(body):
            end = start + rng.randint(low, high)
            yield body[start:end]
            start = end


class ReplyResponse(Response):
    """Sends a :class:`Reply` piece by piece while watching for the client hanging up.

    Starlette's own ``StreamingResponse`` cannot do this: it never notices a
    disconnect while the app is silent (``delay``/``hang``), which is exactly
    when cancellation tests need it.
    """

    def __init__(self, fake: FakeUpstream, record: RecordedRequest, reply: Reply) -> None:
        # Deliberately not calling Response.__init__: this class only needs to be an ASGI callable.
        self._fake = fake
        self._record = record
        self._reply = reply
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.ensure_future(self._send(send))
        listener = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, listener):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if listener.done() and not listener.cancelled() and not self._complete:
            self._fake._note_disconnect(self._record)
        elif sender.done() and not sender.cancelled():
            sender.result()  # surface bugs in the fake itself

    async def _send(self, send: Send) -> None:
        reply = self._reply
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if not reply.is_sse:
            headers.setdefault("content-length", str(len(reply.body)))
        raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        for i, piece in enumerate(self._fake.pieces(reply.body, self._record.index)):
            if i:
                await asyncio.sleep(self._fake.write_delay)  # 0 still lets the loop flush each write
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if reply.hang:
            await asyncio.Event().wait()  # until the listener sees the client leave
        # Every byte is out: a client closing now (e.g. right after [DONE]) has not abandoned anything.
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
