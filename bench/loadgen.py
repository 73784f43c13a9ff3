"""Load generators for the benchmark: `wrk` (JSON) and a lean asyncio HTTP/1.1 client (SSE, or JSON fallback).

Both run closed-loop: `concurrency` keep-alive connections, each sending its next request as soon as the
previous reply ended, for a fixed number of seconds. Both report completed requests, latency percentiles
and the CPU the load generator itself burned (it shares the machine's cores with the gateway).
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
import uvloop


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
    cpu = _cpu_self() - cpu0
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
        tool="asyncio",
    )


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
