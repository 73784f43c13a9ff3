"""Run any ASGI app on a real loopback socket for the length of a test.

Why a real socket rather than ``httpx.ASGITransport``: the gateway's upstream
client must be exercised exactly as in production (connection pooling,
chunked transfer encoding, timeouts, the client closing a socket to cancel a
stream). ``ASGITransport`` buffers whole bodies and never reports a client
disconnect to the app, so streaming and cancellation tests would pass or hang
for the wrong reasons.

The server runs uvicorn in its own thread with its own event loop, so it works
from plain and from ``async`` tests alike, and a test that blocks its own loop
cannot starve the server. Usage::

    with serve(app) as base_url:          # "http://127.0.0.1:54321"
        ...

    async with aserve(app) as base_url:   # same, without blocking the test's loop
        ...
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["RunningServer", "aserve", "serve"]


class RunningServer:
    """A uvicorn server bound to a free loopback port, running in a daemon thread.

    Prefer the :func:`serve` / :func:`aserve` context managers; this class is
    public for tests that need to start and stop a server at odd moments (for
    example to simulate an upstream that goes away between two requests).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        graceful_shutdown_seconds: int = 2,
        **config_kwargs: Any,
    ) -> None:
        options: dict[str, Any] = {
            # Quiet by default: uvicorn's INFO lines are noise in test output.
            "log_level": "warning",
            "access_log": False,
            # Apps under test (e.g. a fake llama.cpp) may set their own Server header.
            "server_header": False,
            # Bounded so a leaked hanging request cannot wedge the test session.
            "timeout_graceful_shutdown": graceful_shutdown_seconds,
            "lifespan": "auto",
        }
        options.update(config_kwargs)
        self._host = host
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
        self._thread = threading.Thread(target=self._run, name="test-uvicorn", daemon=True)
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash (append ``/v1`` yourself)."""
        if self.port is None:
            raise RuntimeError("server is not running")
        return f"http://{self._host}:{self.port}"

    def _run(self) -> None:
        # uvicorn turns startup failures into SystemExit; catch everything so the
        # thread never dies with an unhandled exception (pytest would turn that
        # into a warning, and warnings are errors in this suite).
        try:
            self._server.run()
        except BaseException as exc:
            self._error = exc

    def start(self, timeout: float = 10.0) -> str:
        """Start serving and block until the socket accepts connections; return the base URL."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during startup") from self._error
            if time.monotonic() > deadline:
                self._server.should_exit = True
                raise TimeoutError(f"uvicorn did not start within {timeout} s")
            time.sleep(0.005)
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down gracefully, then force it if it does not finish in time."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("uvicorn did not shut down")
        if self._error is not None:
            raise RuntimeError("uvicorn crashed") from self._error


@contextmanager
def serve(app: ASGIApp, **kwargs: Any) -> Iterator[str]:
    """Serve ``app`` on ``127.0.0.1:<free port>`` for the ``with`` block; yield its base URL.

    Keyword arguments go to :class:`RunningServer` (and from there to
    ``uvicorn.Config``). Close your clients inside the block: connections still
    open at exit delay shutdown by up to ``graceful_shutdown_seconds``.
    """
    server = RunningServer(app, **kwargs)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()


@asynccontextmanager
async def aserve(app: ASGIApp, **kwargs: Any) -> AsyncIterator[str]:
    """Like :func:`serve`, but start and stop in a worker thread so the test's loop keeps running.

    Use this when the test's own event loop still has requests in flight
    against the server at shutdown (e.g. an in-process gateway streaming from
    the fake): a blocking join there would deadlock until the grace period.
    """
    server = RunningServer(app, **kwargs)
    await asyncio.to_thread(server.start)
    try:
        yield server.base_url
    finally:
        await asyncio.to_thread(server.stop)
