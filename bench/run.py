"""Rosetta gateway benchmark: `/v1/responses` (JSON, 20-delta SSE, WebSocket turns) against a fast fake.

    .venv/bin/python bench/run.py [--quick] [--transport aiohttp|httpx|both] [--profile DIR] [--json FILE]

Starts, each in its own process group: the fake Chat Completions upstream (bench/fake_upstream.py), one
single-worker gateway per transport under test (`python -m gateway`, a temp config pointing at the fake),
then for each mode (json, stream, websocket) x concurrency (1, 16, 64) drives closed-loop load for a fixed
number of seconds against the upstream directly (the baseline) and against each gateway, interleaved so
that background noise on the shared machine hits all targets alike. JSON load comes from `wrk -t1` when
installed (else the asyncio client); SSE load from the asyncio client, which reads every stream to its end;
WebSocket load from a lean client on `websockets`' sans-I/O protocol, one persistent connection per client
running turn after turn.
The stream and websocket modes share the same baseline: the upstream's streamed chat completion over HTTP.

Gateway CPU is utime+stime of the gateway PID (/proc/<pid>/stat) before and after each run, divided by
the good requests; RSS is VmRSS after the run. See bench/README.md for the columns and caveats.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import uvloop
from loadgen import (
    AnyTarget,
    LoadResult,
    SocketTarget,
    Target,
    open_socket,
    run_client,
    run_wrk,
    wrk_available,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
API_KEY = "bench-key"
MODEL = "bench"
UPSTREAM_MODEL = "fake-model"
PROMPT = "Say hello in one short sentence."
CPU_TARGET_MS = {"json": 1.0, "stream": 2.0, "stream-nostore": 2.0, "websocket": 2.0}
"""Gateway CPU ms per request; a WebSocket turn is held to the stream target."""
MODES = tuple(CPU_TARGET_MS)
DEFAULT_MODES = "json,stream,websocket"
MODE_TITLES = {
    "json": "JSON (non-streaming)",
    "stream": "SSE stream ({deltas} text deltas)",
    "stream-nostore": "SSE stream, `store: false` ({deltas} text deltas)",
    "websocket": "WebSocket turns ({deltas} text deltas, `store: false`, one persistent connection each)",
}
NOISY_CORES = 0.25
"""A run during which the rest of the machine kept more than this many cores busy is flagged as noisy."""
RPS_TOLERANCE = 0.10
"""req/s "holds" as concurrency rises if each level keeps at least 90% of the previous one's."""
CLK_TCK = os.sysconf("SC_CLK_TCK")
GATEWAY_PACKAGES = ("gateway/", "adapters/", "schemas/", "config/")


# --------------------------------------------------------------------------------------------------------
# processes


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_service(
    name: str, command: list[str], port: int, workdir: Path, cpus: set[int] | None, cwd: Path = ROOT
) -> Service:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)  # before it serves anything; its threads inherit it
    return Service(name, proc, port, log)


def stop_service(service: Service) -> None:
    """SIGTERM to the service's process group, then SIGKILL if it has not gone after 5 s."""
    if service.proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.proc.pid, sig)
        try:
            service.proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_ready(service: Service, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({service.proc.returncode}):\n{tail(service.log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(HOST, service.port, timeout=1)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"{service.name} not ready after {timeout} s:\n{tail(service.log)}")


def tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------------------
# /proc readings


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process (all threads) in seconds, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def busy_seconds() -> float:
    """CPU time spent busy by the whole machine (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu_seconds() -> float:
    """This process and its waited-for children (the wrk runs): the load generator's CPU."""
    me = os.times()
    return me.user + me.system + me.children_user + me.children_system


def calibrate(cpus: set[int] | None) -> float:
    """CPU ms of a fixed pure-Python workload (best of 3), run on the gateway's CPU.

    The machine is a shared VM: the same work costs more CPU time when the host is busy, which no
    /proc counter inside the VM shows. Taken after every run, this says how slow the machine was then.
    """
    previous = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            table = {str(i): {"n": i, "pair": [i, i + 1]} for i in range(20000)}
            json.dumps(table)
            best = min(best, time.process_time() - start)
        return best * 1000
    finally:
        os.sched_setaffinity(0, previous)


# --------------------------------------------------------------------------------------------------------
# measurements


@dataclass
class Measurement:
    mode: str
    concurrency: int
    target: str
    """`direct` (the fake upstream itself) or the gateway's transport name."""
    load: LoadResult
    gateway_cpu_s: float | None
    gateway_sys_s: float | None
    """The kernel part of `gateway_cpu_s` (stime): syscalls, and on loopback the peer's TCP receive work."""
    gateway_rss_mb: float | None
    upstream_cpu_s: float
    loadgen_cpu_s: float
    other_cores: float
    """Busy CPU of everything else on the machine during the run, in cores (noise indicator)."""
    calibration_ms: float = 0.0
    """`calibrate()` right after the run: how slow the (shared) machine was."""
    runs: list[float] = field(default_factory=list)
    """Gateway CPU ms/request of each repeat (the reported run is the median one)."""

    def per_request_ms(self, seconds: float | None) -> float | None:
        if seconds is None or self.load.requests == 0:
            return None
        return seconds / self.load.requests * 1000

    @property
    def gateway_cpu_ms(self) -> float | None:
        return self.per_request_ms(self.gateway_cpu_s)

    @property
    def gateway_util(self) -> float | None:
        if self.gateway_cpu_s is None or self.load.wall_s <= 0:
            return None
        return self.gateway_cpu_s / self.load.wall_s


def gateway_target(service: Service, stream: bool, store: bool | None = None) -> Target:
    body: dict[str, object] = {"model": MODEL, "input": PROMPT}
    if stream:
        body["stream"] = True
    if store is not None:
        body["store"] = store
    return Target(
        HOST,
        service.port,
        "/v1/responses",
        json.dumps(body, separators=(",", ":")).encode(),
        (("Authorization", f"Bearer {API_KEY}"),),
        marker=b"event: response.completed" if stream else None,
    )


def socket_target(service: Service, compression: bool) -> SocketTarget:
    message = {"type": "response.create", "model": MODEL, "input": PROMPT, "store": False}
    return SocketTarget(
        HOST,
        service.port,
        "/v1/responses",
        json.dumps(message, separators=(",", ":")),
        (("Authorization", f"Bearer {API_KEY}"),),
        compression=compression,
    )


def mode_target(mode: str, service: Service, args: argparse.Namespace) -> AnyTarget:
    """What a gateway is sent in `mode`."""
    if mode == "websocket":
        return socket_target(service, args.ws_compression)
    if mode == "stream-nostore":
        return gateway_target(service, True, store=False)
    return gateway_target(service, mode == "stream")


def direct_target(service: Service, stream: bool) -> Target:
    body: dict[str, object] = {"model": UPSTREAM_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return Target(
        HOST,
        service.port,
        "/v1/chat/completions",
        json.dumps(body, separators=(",", ":")).encode(),
        (("Authorization", "Bearer sk-fake"),),
        marker=b"data: [DONE]" if stream else None,
    )


def measure_once(
    mode: str,
    concurrency: int,
    name: str,
    target: AnyTarget,
    seconds: float,
    loadgen: Callable[[AnyTarget, int, float], LoadResult],
    upstream: Service,
    gateway: Service | None,
    pin: bool,
) -> Measurement:
    gw0 = cpu_times(gateway.pid) if gateway else None
    up0 = cpu_seconds(upstream.pid)
    own0 = own_cpu_seconds()
    busy0 = busy_seconds()
    result = loadgen(target, concurrency, seconds)
    time.sleep(0.05)  # let requests still in flight at the deadline finish before the "after" reading
    busy = busy_seconds() - busy0
    own = own_cpu_seconds() - own0
    up = cpu_seconds(upstream.pid) - up0
    gw1 = cpu_times(gateway.pid) if gateway else None
    gw = gw_sys = None
    if gw0 is not None and gw1 is not None:
        gw, gw_sys = sum(gw1) - sum(gw0), gw1[1] - gw0[1]
    ours = own + up + (gw or 0.0)
    return Measurement(
        mode=mode,
        concurrency=concurrency,
        target=name,
        load=result,
        gateway_cpu_s=gw,
        gateway_sys_s=gw_sys,
        gateway_rss_mb=rss_mb(gateway.pid) if gateway else None,
        upstream_cpu_s=up,
        loadgen_cpu_s=own,
        other_cores=max(0.0, busy - ours) / max(result.wall_s, 1e-9),
        calibration_ms=calibrate({0} if pin else None),
    )


def measure_cell(
    mode: str,
    concurrency: int,
    cells: list[tuple[str, AnyTarget, Service | None]],
    args: argparse.Namespace,
    upstream: Service,
) -> list[Measurement]:
    """Measure every target of one (mode, concurrency) cell, `args.repeat` times, targets interleaved.

    Each target gets an unmeasured warm-up first (fills connection pools). Per target the median run is
    kept (by gateway CPU per request for gateways, by req/s for the direct baseline), among the runs that
    were not noisy (other processes busy on more than NOISY_CORES) when there is at least one such run.
    """
    use_wrk = mode == "json" and args.loadgen != "asyncio" and wrk_available()

    def loadgen(target: AnyTarget, concurrency: int, seconds: float) -> LoadResult:
        if use_wrk and isinstance(target, Target):
            return run_wrk(target, concurrency, seconds)
        return run_client(target, concurrency, seconds)

    runs: dict[str, list[Measurement]] = defaultdict(list)
    for repeat in range(args.repeat):
        for name, target, gateway in cells:
            if repeat == 0:
                run_client(target, concurrency, args.warmup)
            m = measure_once(
                mode, concurrency, name, target, args.duration, loadgen, upstream, gateway, args.pin
            )
            runs[name].append(m)
            print(
                f"  {mode:14} c={concurrency:<3} {name:8} {m.load.rps:8,.0f} req/s  "
                f"p50 {m.load.p50_ms:7.2f} ms  gw CPU {fmt(m.gateway_cpu_ms)} ms/req  "
                f"other load {m.other_cores:.2f} cores  calibration {m.calibration_ms:.0f} ms",
                flush=True,
            )
    chosen: list[Measurement] = []
    for name, _, gateway in cells:
        quiet = [m for m in runs[name] if m.other_cores <= NOISY_CORES] or runs[name]
        if gateway is None:
            ordered = sorted(quiet, key=lambda m: m.load.rps)
        else:
            ordered = sorted(quiet, key=lambda m: m.gateway_cpu_ms or 0.0)
        median = ordered[len(ordered) // 2]
        median.runs = [m.gateway_cpu_ms or 0.0 for m in runs[name]] if gateway else []
        chosen.append(median)
    return chosen


def sanity_check(gateway: Service, expected_deltas: int) -> None:
    """One request of each kind through the gateway; fail loudly before measuring a broken setup."""
    for stream in (False, True):
        target = gateway_target(gateway, stream)
        conn = http.client.HTTPConnection(HOST, gateway.port, timeout=10)
        try:
            conn.request("POST", target.path, body=target.body, headers=dict(target.headers))
            reply = conn.getresponse()
            body = reply.read()
        finally:
            conn.close()
        if reply.status != 200:
            raise RuntimeError(f"{gateway.name}: HTTP {reply.status}: {body[:500]!r}")
        if stream:
            deltas = body.count(b"event: response.output_text.delta\n")
            if deltas != expected_deltas or b"event: response.completed\n" not in body:
                raise RuntimeError(
                    f"{gateway.name}: stream had {deltas} text deltas, expected {expected_deltas}"
                )
        elif json.loads(body).get("status") != "completed":
            raise RuntimeError(f"{gateway.name}: JSON reply not completed: {body[:500]!r}")


def socket_check(gateway: Service, expected_deltas: int, compression: bool) -> None:
    """Two turns on one WebSocket: each must end `response.completed` with exactly the expected deltas."""
    target = socket_target(gateway, compression)

    async def check() -> None:
        conn = await asyncio.wait_for(open_socket(target, record_types=True), 10)
        try:
            for turn in (1, 2):
                assert conn.types is not None
                conn.types.clear()
                good = await asyncio.wait_for(conn.turn(target.message.encode()), 10)
                types = conn.types
                deltas = types.count("response.output_text.delta")
                if not good or types[-1] != "response.completed" or deltas != expected_deltas:
                    raise RuntimeError(
                        f"{gateway.name}: WebSocket turn {turn} ended {types[-1]!r} after {deltas} text "
                        f"deltas (expected response.completed after {expected_deltas}): {types}"
                    )
        finally:
            await conn.close()

    uvloop.run(check())


# --------------------------------------------------------------------------------------------------------
# profiling


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile(
    gateway: Service, mode: str, concurrency: int, seconds: float, out_dir: Path, target: AnyTarget
) -> Path | None:
    """Sample the gateway with `py-spy record` (raw collapsed stacks) while load runs.

    py-spy pauses the gateway at each sample, so this load is separate from the measured runs.
    """
    tool = py_spy()
    if tool is None:
        print("py-spy not found: `.venv/bin/pip install py-spy`", file=sys.stderr)
        return None
    out = out_dir / f"{gateway.name}-{mode}-c{concurrency}.txt"
    seconds = max(seconds, 5.0)
    command = [
        tool,
        "record",
        "--pid",
        str(gateway.pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
    ]  # fmt: skip  (blocking sampling: whole, consistent stacks; the run's speed is not reported)
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.3)  # let py-spy attach
        run_client(target, concurrency, seconds)
        _, err = spy.communicate(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            os.killpg(spy.pid, signal.SIGKILL)
            spy.wait()
    if not out.exists():
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}", file=sys.stderr)
        return None
    return out


def _function(frame: str) -> str:
    """`func (path/file.py:123)` → `func (path/file.py)`: py-spy frames carry the sampled line."""
    name, _, location = frame.rpartition(" (")
    path = location.rstrip(")").rpartition(":")[0] or location.rstrip(")")
    return f"{name} ({path})"


def _package(frame: str) -> str:
    """`func (httpx/_models.py:302)` → `httpx`; the event loop's own C time shows as `asyncio/runners.py`."""
    location = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    if location.startswith("asyncio/runners.py"):
        return "event loop (uvloop C code, syscalls)"
    head = location.split("/")[0]
    return head.removesuffix(".py") or "(unknown)"


def _own_code(frame: str) -> bool:
    return any(f"({pkg}" in frame or f"/{pkg}" in frame for pkg in GATEWAY_PACKAGES)


def summarize_profile(path: Path, top: int = 15) -> str:
    """Sample shares: self time per line (any code, and the gateway's own), inclusive time per function."""
    self_lines: dict[str, int] = defaultdict(int)
    incl_functions: dict[str, int] = defaultdict(int)
    innermost: dict[str, int] = defaultdict(int)
    packages: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_lines[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for function in {_function(f) for f in frames}:
            incl_functions[function] += count
        own = [f for f in frames if _own_code(f) and "__main__" not in f]
        innermost[own[-1] if own else "(outside gateway code: server, framework, event loop)"] += count
    if total == 0:
        return f"### {path.stem}: no samples\n"

    def table(title: str, counts: dict[str, int], keep: Callable[[str], bool]) -> list[str]:
        rows = sorted(((n, f) for f, n in counts.items() if keep(f)), reverse=True)[:top]
        lines = [title, "", "| % samples | frame |", "| ---: | --- |"]
        lines += [f"| {n / total * 100:5.1f} | `{f}` |" for n, f in rows]
        return [*lines, ""]

    def request_path(function: str) -> bool:
        return _own_code(function) and "__main__" not in function

    lines = [f"### {path.stem} ({total} samples)", ""]
    lines += table("Self time by package (where the sampled leaf frame lives):", packages, lambda f: True)
    lines += table(
        "Innermost gateway-code line (that line plus the library code it calls):", innermost, lambda f: True
    )
    lines += table("Self time by line, any code:", self_lines, lambda f: True)
    lines += table(
        "Self time by line, gateway code (gateway/ adapters/ schemas/ config/):", self_lines, _own_code
    )
    lines += table("Inclusive time by function, gateway code:", incl_functions, request_path)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# report


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(results: list[Measurement], transports: list[str], deltas: int) -> str:
    direct = {(m.mode, m.concurrency): m for m in results if m.target == "direct"}
    fastest = min((m.calibration_ms for m in results if m.calibration_ms > 0), default=0.0)
    lines: list[str] = []
    for mode in dict.fromkeys(m.mode for m in results):
        title = MODE_TITLES[mode].format(deltas=deltas)
        unit = "turn" if mode == "websocket" else "req"  # (a WebSocket table's direct rows are requests)
        rate = "turns/s" if mode == "websocket" else "req/s"
        lines += [
            f"#### {title}",
            "",
            f"| conc | target | {rate} | p50 ms | p99 ms | TTFB p50 ms | added p50 ms | gw CPU ms/{unit} "
            f"| gw CPU % | gw sys share | gw RSS MB | loadgen CPU ms/{unit} | upstream CPU ms/{unit} "
            "| other load (cores) | slowdown | errors |",
            "| ---: | --- " + "| ---: " * 14 + "|",
        ]
        for m in results:
            if m.mode != mode:
                continue
            base = direct.get((m.mode, m.concurrency))
            added = m.load.p50_ms - base.load.p50_ms if base and m.target != "direct" else None
            util = m.gateway_util
            cpu = fmt(m.gateway_cpu_ms)
            if len(m.runs) > 1:
                cpu += f" ({min(m.runs):.2f}-{max(m.runs):.2f})"
            sys_share = None
            if m.gateway_cpu_s and m.gateway_sys_s is not None:
                sys_share = m.gateway_sys_s / m.gateway_cpu_s * 100
            if m.gateway_cpu_ms is not None:
                cpu += " ✓" if m.gateway_cpu_ms <= CPU_TARGET_MS[mode] else " ✗"
            lines.append(
                f"| {m.concurrency} | {m.target} ({m.load.tool}) | {m.load.rps:,.0f} | {fmt(m.load.p50_ms)} "
                f"| {fmt(m.load.p99_ms)} | {fmt(m.load.ttfb_p50_ms)} | {fmt(added)} | {cpu} "
                f"| {fmt(util * 100 if util is not None else None, 0)} | {fmt(sys_share, 0)} "
                f"| {fmt(m.gateway_rss_mb, 0)} "
                f"| {fmt(m.per_request_ms(m.loadgen_cpu_s))} | {fmt(m.per_request_ms(m.upstream_cpu_s))} "
                f"| {fmt(m.other_cores)}{' ⚠' if m.other_cores > NOISY_CORES else ''} "
                f"| {fmt(m.calibration_ms / fastest if fastest else None)} | {m.load.errors} |"
            )
        lines.append("")
    lines += verdicts(results, transports)
    return "\n".join(lines)


def verdicts(results: list[Measurement], transports: list[str]) -> list[str]:
    lines = [
        "#### Targets (one worker)",
        "",
        "| transport | mode | gw CPU ms/req by concurrency | target | CPU met "
        "| req/s by concurrency | req/s holds |",
        "| --- | --- | --- | ---: | --- | --- | --- |",
    ]
    for transport in transports:
        for mode in dict.fromkeys(m.mode for m in results):
            rows = sorted(
                (m for m in results if m.target == transport and m.mode == mode), key=lambda m: m.concurrency
            )
            if not rows:
                continue
            cpus = [m.gateway_cpu_ms or 0.0 for m in rows]
            rps = [m.load.rps for m in rows]
            holds = all(later >= (1 - RPS_TOLERANCE) * earlier for earlier, later in itertools.pairwise(rps))
            cpu_met = max(cpus) <= CPU_TARGET_MS[mode]
            target = CPU_TARGET_MS[mode]
            lines.append(
                f"| {transport} | {mode} | {' / '.join(f'{c:.2f}' for c in cpus)} | ≤ {target:.1f} "
                f"| {'yes' if cpu_met else 'no'} | {' / '.join(f'{r:,.0f}' for r in rps)} "
                f"| {'yes' if holds else 'no'} |"
            )
    lines.append("")
    return lines


def code_version(root: Path) -> str:
    """The commit measured, and whether the gateway's packages differ from it (others edit them live)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", *GATEWAY_PACKAGES],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return f"gateway from {root} (not a git checkout)"
    return f"commit {commit}" + (" + uncommitted changes in the gateway's packages" if status.strip() else "")


def environment(args: argparse.Namespace) -> str:
    load = os.getloadavg()
    wrk = "wrk -t1" if wrk_available() and args.loadgen != "asyncio" else "asyncio client"
    ws_load = ""
    if "websocket" in args.modes:
        deflate = "permessage-deflate" if args.ws_compression else "no compression"
        ws_load = f" · WebSocket load: websockets client ({deflate})"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')} · {code_version(args.gateway_root)} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · "
        f"load avg {load[0]:.2f} · {args.duration:g} s per run (+{args.warmup:g} s warm-up), "
        f"repeat {args.repeat} · JSON load: {wrk} · stream load: asyncio client{ws_load} · "
        f"upstream delta gap {args.delta_gap_ms:g} ms"
    )


# --------------------------------------------------------------------------------------------------------
# main


def write_config(path: Path, port: int, upstream_port: int, transport: str) -> None:
    config = {  # JSON is YAML
        "server": {"host": HOST, "port": port, "upstream_transport": transport},
        "keys": [{"key": API_KEY, "team": "bench"}],
        "providers": {
            "fake": {
                "kind": "chat_completions",
                "base_url": f"http://{HOST}:{upstream_port}/v1",
                "dialect": {"preset": "generic"},
            }
        },
        "models": {MODEL: {"provider": "fake", "model": UPSTREAM_MODEL}},
    }
    path.write_text(json.dumps(config, indent=2))


@contextlib.contextmanager
def services(args: argparse.Namespace, transports: list[str]) -> Iterator[tuple[Service, dict[str, Service]]]:
    workdir = Path(tempfile.mkdtemp(prefix="rosetta-bench-"))
    started: list[Service] = []
    failed = True
    try:
        port = free_port()
        command = [sys.executable, str(BENCH / "fake_upstream.py"), "--host", HOST, "--port", str(port)]
        command += ["--deltas", str(args.deltas), "--delta-gap-ms", str(args.delta_gap_ms)]
        upstream = start_service("upstream", command, port, workdir, {1} if args.pin else None)
        started.append(upstream)
        gateways: dict[str, Service] = {}
        for transport in transports:
            port = free_port()
            config = workdir / f"{transport}.yaml"
            write_config(config, port, upstream.port, transport)
            # `-m gateway` imports from its working directory first: --gateway-root picks the code measured
            command = [sys.executable, "-m", "gateway", "--config", str(config), "--port", str(port)]
            cpus = {0} if args.pin else None
            command += ["--log-level", "warning"]
            gateway = start_service(transport, command, port, workdir, cpus, cwd=args.gateway_root)
            started.append(gateway)
            gateways[transport] = gateway
        for service in started:
            wait_ready(service)
        for gateway in gateways.values():
            sanity_check(gateway, args.deltas)
            if "websocket" in args.modes:
                socket_check(gateway, args.deltas, args.ws_compression)
        yield upstream, gateways
        failed = False
    finally:
        for service in reversed(started):
            stop_service(service)
        if failed:
            for service in started:
                print(f"--- {service.name} log ({service.log}):\n{tail(service.log)}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs, 0.5 s warm-up")
    parser.add_argument("--transport", choices=["aiohttp", "httpx", "both"], default="both")
    parser.add_argument(
        "--modes",
        default=DEFAULT_MODES,
        help=f"comma-separated, of {','.join(MODES)} (default {DEFAULT_MODES})",
    )
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 5, --quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of unmeasured load before each run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the median-CPU run is shown")
    parser.add_argument("--loadgen", choices=["auto", "asyncio"], default="auto", help="JSON load generator")
    parser.add_argument("--deltas", type=int, default=20, help="content deltas per upstream stream")
    parser.add_argument("--delta-gap-ms", type=float, default=0.0, help="upstream pause between SSE events")
    parser.add_argument(
        "--ws-compression",
        action="store_true",
        help="WebSocket client offers permessage-deflate (the websockets default; uvicorn accepts it)",
    )
    parser.add_argument("--profile", type=Path, help="also py-spy each gateway under load; write stacks here")
    parser.add_argument("--profile-concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path, help="write raw results here")
    parser.add_argument(
        "--gateway-root",
        type=Path,
        default=ROOT,
        help="checkout whose gateway/ adapters/ schemas/ config/ are measured (A/B against another commit)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the gateway to CPU 0 and the upstream + load generator to CPU 1",
    )
    args = parser.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    args.pin = args.pin and len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0)
    if args.pin:
        os.sched_setaffinity(0, {1})  # this process (the asyncio load generator) and wrk, its child
    transports = ["aiohttp", "httpx"] if args.transport == "both" else [args.transport]
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    args.modes = modes
    levels = [int(c) for c in args.concurrency.split(",") if c]
    if args.loadgen == "auto" and not wrk_available():
        print("note: wrk not found (`apt-get install -y wrk`); JSON load falls back to the asyncio client")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the finally blocks stop services
    started = environment(args)
    print(started, flush=True)
    results: list[Measurement] = []
    profiles: list[Path] = []
    with services(args, transports) as (upstream, gateways):
        for mode in modes:
            stream = mode != "json"  # stream, stream-nostore and websocket share the streamed baseline
            for concurrency in levels:
                cells: list[tuple[str, AnyTarget, Service | None]] = [
                    ("direct", direct_target(upstream, stream), None)
                ]
                cells += [(t, mode_target(mode, g, args), g) for t, g in gateways.items()]
                results += measure_cell(mode, concurrency, cells, args, upstream)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for gateway in gateways.values():
                for mode in modes:
                    target = mode_target(mode, gateway, args)
                    out = profile(
                        gateway, mode, args.profile_concurrency, args.duration, args.profile, target
                    )
                    if out:
                        profiles.append(out)

    print()
    print(started + f" · load avg at end {os.getloadavg()[0]:.2f}")
    print()
    print(render(results, transports, args.deltas))
    for path in profiles:
        summary = summarize_profile(path)
        path.with_suffix(".md").write_text(summary)
        print(summary)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "environment": started,
                    "results": [
                        {**asdict(m), "rps": m.load.rps, "gateway_cpu_ms": m.gateway_cpu_ms} for m in results
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
