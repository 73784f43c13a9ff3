"""Transport: send a `VendorRequest` upstream and hand back the response as it streams.

One shared httpx transport per app, aiohttp-backed (`httpx-aiohttp`) by default: it keeps httpx's request
and response types while costing a fraction of httpx's own pool in CPU per request, and stays flat as
concurrency rises (bench/README.md). Requests go to the transport directly: `AsyncClient.send` adds
cookie jars, redirects and auth hooks a gateway never uses, at about a third of the relay's CPU.
Transport failures are mapped here, once: timeouts → 504, unreachable upstream → 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from httpx_aiohttp import AiohttpTransport

from adapters.base import Adapter, VendorRequest
from config.models import Timeouts
from gateway.errors import UpstreamError, UpstreamTimeout, redact


def create_transport(kind: str = "aiohttp", max_connections: int = 1000) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    return AiohttpTransport(limits=limits)


def transport_error(exc: httpx.HTTPError) -> UpstreamError:
    """Timeouts are 504; anything else (refused, reset, closed early) is 502.

    httpx-aiohttp maps every aiohttp connection error to `httpx.ConnectTimeout`, so a timeout counts only
    when its cause really was one.
    """
    cause = exc.__cause__
    if isinstance(exc, httpx.TimeoutException) and (cause is None or isinstance(cause, TimeoutError)):
        return UpstreamTimeout("The upstream did not answer in time.")
    return UpstreamError(f"Could not talk to the upstream: {type(exc).__name__}.")


async def open_upstream(
    transport: httpx.AsyncBaseTransport, request: VendorRequest, adapter: Adapter, timeouts: Timeouts
) -> httpx.Response:
    """Send the request and wait for the status line. Error statuses become the adapter's error.

    The returned response is still streaming; the caller must `aclose()` it.
    """
    timeout = {
        "connect": timeouts.connect,
        "read": timeouts.read,
        "write": timeouts.write,
        "pool": timeouts.pool,
    }
    built = httpx.Request(
        request.method,
        request.url,
        content=request.body,
        headers=request.headers,
        extensions={"timeout": timeout},
    )
    try:
        response = await transport.handle_async_request(built)
    except httpx.HTTPError as exc:
        raise transport_error(exc) from None
    if response.status_code >= 400:
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        finally:
            await response.aclose()
        error = adapter.parse_error(response.status_code, body, response.headers.get("retry-after"))
        error.message = redact(error.message, _credentials(request))
        raise error
    return response


def _credentials(request: VendorRequest) -> tuple[str, ...]:
    """Header values that carry credentials, so a vendor echoing them back cannot leak them."""
    secrets = []
    for name, value in request.headers.items():
        if any(word in name.lower() for word in ("auth", "key", "token")):
            secrets.append(value)
            secrets.append(value.partition(" ")[2])
    return tuple(s for s in secrets if len(s) >= 8)


async def read_all(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError as exc:
        raise transport_error(exc) from None
    finally:
        await response.aclose()


async def iter_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    """The upstream body chunk by chunk, with transport failures mapped to gateway errors."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        raise transport_error(exc) from None
