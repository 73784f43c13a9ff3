"""Load generators for the benchmark: `wrk` (JSON), a lean asyncio HTTP/1.1 client (SSE, or JSON fallback),
and a lean WebSocket client (`websockets`' sans-I/O protocol in an asyncio protocol) for Responses turns.

All run closed-loop: `concurrency` persistent connections, each sending its next request (or turn) as soon
as the previous reply ended, for a fixed number of seconds. All report completed requests, latency
percentiles and the CPU the load generator itself burned (it shares the machine's cores with the gateway).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import cast

import httptools
import orjson
import uvloop
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri


@dataclass
class LoadResult:
    requests: int
    """Completed requests with a good reply (2xx and, for streams, the expected terminal marker)."""
    errors: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    ttfb_p50_ms: float | None = None
    ttfb_p99_ms: float | None = None
    loadgen_cpu_s: float = 0.0
    tool: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    marker: bytes | None = None
    """For streams: bytes the body must contain (e.g. the terminal event) for the reply to count as good."""

    def request_bytes(self) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class SocketTarget:
    """A Responses WebSocket: a turn sends `message` (one text frame), reads frames up to a terminal one."""

    host: str
    port: int
    path: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()
    compression: bool = False
    """Offer permessage-deflate (the `websockets` client's own default; uvicorn accepts it)."""

    @property
    def uri(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path}"


AnyTarget = Target | SocketTarget

TERMINAL_EVENTS = {"response.completed": True, "response.failed": False, "response.incomplete": False}
"""Event types that end a turn, and whether the turn counts as good; an `error` frame also ends it (bad)."""


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------------------
# asyncio client


class _Connection(asyncio.Protocol):
    """One keep-alive client connection; `exchange()` sends a request and waits for its whole reply."""

    def __init__(self, marker: bytes | None) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.marker = marker
        self.waiter: asyncio.Future[None] | None = None
        self.first_byte = 0.0
        self.seen_marker = False
        self.tail = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed mid-reply"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(exc)

    def on_body(self, body: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        if self.marker is not None and not self.seen_marker:
            window = self.tail + body
            self.seen_marker = self.marker in window
            self.tail = window[-len(self.marker) :]

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """(status, good body); `first_byte` holds the perf_counter of the first body byte."""
        assert self.transport is not None
        self.first_byte = 0.0
        self.seen_marker = self.marker is None
        self.tail = b""
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        await self.waiter
        return self.parser.get_status_code(), self.seen_marker


async def _worker(
    target: Target,
    request: bytes,
    deadline: float,
    latencies: list[float],
    ttfbs: list[float],
    errors: list[int],
) -> None:
    loop = asyncio.get_running_loop()
    conn: _Connection | None = None
    while time.perf_counter() < deadline:
        if conn is None or conn.closed:
            _, conn = await loop.create_connection(
                lambda: _Connection(target.marker), target.host, target.port
            )
        start = time.perf_counter()
        try:
            status, good = await conn.exchange(request)
        except (ConnectionError, httptools.HttpParserError):
            errors[0] += 1
            conn = None
            continue
        end = time.perf_counter()
        if 200 <= status < 300 and good:
            latencies.append(end - start)
            ttfbs.append((conn.first_byte or end) - start)
        else:
            errors[0] += 1
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def _drive(
    target: Target, concurrency: int, seconds: float
) -> tuple[list[float], list[float], int, float]:
    request = target.request_bytes()
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors = [0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(_worker(target, request, deadline, latencies, ttfbs, errors) for _ in range(concurrency))
    )
    return latencies, ttfbs, errors[0], time.perf_counter() - start


def run_asyncio(target: Target, concurrency: int, seconds: float) -> LoadResult:
    """Closed-loop load from this process (uvloop); its CPU is measured as the load generator's."""
    cpu0 = _cpu_self()
    latencies, ttfbs, errors, wall = uvloop.run(_drive(target, concurrency, seconds))
    return _measured(latencies, ttfbs, errors, wall, _cpu_self() - cpu0, "asyncio")


def _measured(
    latencies: list[float], ttfbs: list[float], errors: int, wall: float, cpu: float, tool: str
) -> LoadResult:
    latencies.sort()
    ttfbs.sort()
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        wall_s=wall,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        ttfb_p50_ms=percentile(ttfbs, 50) * 1000,
        ttfb_p99_ms=percentile(ttfbs, 99) * 1000,
        loadgen_cpu_s=cpu,
        tool=tool,
    )


# --------------------------------------------------------------------------------------------------------
# WebSocket client


class SocketConnection(asyncio.Protocol):
    """One WebSocket client connection on `websockets`' sans-I/O protocol (its frame parser and masking, no
    per-message futures or reader task); `turn()` sends a create and waits for the turn's terminal frame."""

    def __init__(self, target: SocketTarget, record_types: bool = False) -> None:
        extensions = enable_client_permessage_deflate(None) if target.compression else None
        self.ws = ClientProtocol(parse_uri(target.uri), extensions=extensions, max_size=None)
        self.headers = target.headers
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.waiter: asyncio.Future[bool] | None = None
        self.first_frame = 0.0
        self.last_frame = 0.0
        self.types: list[str] | None = [] if record_types else None
        """Every event type received, in order (for the startup check)."""
        self.fragments: list[bytes] = []

    @property
    def closed(self) -> bool:
        return self.lost.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        request = self.ws.connect()
        for name, value in self.headers:
            request.headers[name] = value
        self.ws.send_request(request)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.opened, self.waiter):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection closed mid-turn"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        events = self.ws.events_received()
        self._flush()  # pongs, close replies
        for event in events:
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                    if not event.fin:
                        self.fragments.append(bytes(event.data))
                    elif self.fragments:
                        self._message(b"".join([*self.fragments, event.data]))
                        self.fragments = []
                    else:
                        self._message(event.data)
            elif isinstance(event, Response) and not self.opened.done():
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
        if self.ws.state is State.CLOSED and self.transport is not None:
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is None:
            return
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def _message(self, data: bytes | bytearray | memoryview) -> None:
        now = time.perf_counter()
        if not self.first_frame:
            self.first_frame = now
        kind = orjson.loads(data).get("type")
        if self.types is not None:
            self.types.append(str(kind))
        if kind in TERMINAL_EVENTS or kind == "error":
            self.last_frame = now
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(TERMINAL_EVENTS.get(kind, False))

    async def turn(self, message: bytes) -> bool:
        """Send one `response.create`; whether its turn ended `response.completed`. `first_frame` and
        `last_frame` hold the perf_counter of its first and terminal frames."""
        self.first_frame = 0.0
        self.waiter = asyncio.get_running_loop().create_future()
        self.ws.send_text(message)
        self._flush()
        return await self.waiter

    async def close(self) -> None:
        """Closing handshake, then wait (briefly) for the server to close the TCP connection."""
        if self.closed or self.transport is None:
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 5)
        except TimeoutError:
            self.transport.abort()


async def open_socket(target: SocketTarget, record_types: bool = False) -> SocketConnection:
    """Connect and complete the opening handshake (an HTTP 101; anything else raises)."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: SocketConnection(target, record_types), target.host, target.port
    )
    await conn.opened
    return conn


async def _socket_worker(
    target: SocketTarget,
    message: bytes,
    deadline: float,
    latencies: list[float],
    ttfbs: list[float],
    errors: list[int],
    ends: list[float],
) -> None:
    """One persistent connection; its next turn starts when the previous turn's terminal frame came."""
    conn: SocketConnection | None = None
    try:
        while time.perf_counter() < deadline:
            if conn is None or conn.closed:
                conn = await open_socket(target)
            start = time.perf_counter()
            try:
                good = await conn.turn(message)
            except ConnectionError:
                errors[0] += 1
                conn = None
                continue
            if good:
                latencies.append(conn.last_frame - start)
                ttfbs.append(conn.first_frame - start)
            else:
                errors[0] += 1
        ends.append(time.perf_counter())  # the run's wall time ends here, before the closing handshake
    finally:
        if conn is not None:
            await conn.close()


async def _drive_sockets(
    target: SocketTarget, concurrency: int, seconds: float
) -> tuple[list[float], list[float], int, float]:
    message = target.message.encode()
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors = [0]
    ends: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *(
            _socket_worker(target, message, deadline, latencies, ttfbs, errors, ends)
            for _ in range(concurrency)
        )
    )
    return latencies, ttfbs, errors[0], max(ends, default=time.perf_counter()) - start


def run_websocket(target: SocketTarget, concurrency: int, seconds: float) -> LoadResult:
    """Closed-loop WebSocket turns from this process (uvloop): `concurrency` connections opened at the start
    of the run (inside its wall time) and closed after its last turns (outside it, but the gateway's CPU for
    both handshakes is counted), each running one turn at a time."""
    cpu0 = _cpu_self()
    latencies, ttfbs, errors, wall = uvloop.run(_drive_sockets(target, concurrency, seconds))
    return _measured(latencies, ttfbs, errors, wall, _cpu_self() - cpu0, "websockets")


def run_client(target: AnyTarget, concurrency: int, seconds: float) -> LoadResult:
    """The in-process load generator for the target's kind: the WebSocket client or the HTTP one."""
    if isinstance(target, SocketTarget):
        return run_websocket(target, concurrency, seconds)
    return run_asyncio(target, concurrency, seconds)


# --------------------------------------------------------------------------------------------------------
# wrk

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d,"
    .. "\\"connect\\":%%d,\\"read\\":%%d,\\"write\\":%%d,\\"status\\":%%d,\\"timeout\\":%%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(target: Target, concurrency: int, seconds: float) -> LoadResult:
    """One wrk thread (`-t1`): it leaves the most CPU to the gateway and still outruns it by far."""
    headers = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in target.headers)
    script = _WRK_SCRIPT % {"body": target.body.decode(), "headers": headers}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        script_path = handle.name
    url = f"http://{target.host}:{target.port}{target.path}"
    duration = max(1, round(seconds))
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", script_path, url]
    cpu0 = _cpu_children()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=False)
    finally:
        os.unlink(script_path)
    cpu = _cpu_children() - cpu0
    match = re.search(r"^WRKJSON (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    data = json.loads(match.group(1))
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    # wrk counts non-2xx replies as completed requests *and* as status errors.
    good = int(data["requests"]) - int(data["status"])
    return LoadResult(
        requests=good,
        errors=errors,
        wall_s=int(data["duration_us"]) / 1e6,
        p50_ms=int(data["p50_us"]) / 1000,
        p99_ms=int(data["p99_us"]) / 1000,
        loadgen_cpu_s=cpu,
        tool="wrk",
    )
