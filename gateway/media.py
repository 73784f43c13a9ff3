"""Fetch media given by URL and inline it, for upstreams that only take inline media.

Opt-in per provider (`fetch_media_urls: true`): fetching makes the gateway an HTTP client of URLs chosen by
callers, so the operator decides. Bounded by size and time; a failure is the caller's 400 naming the part.
"""

from __future__ import annotations

import base64

import httpx

from gateway.errors import InvalidRequest
from schemas import canonical as c

_TIMEOUT = {"connect": 5.0, "read": 10.0, "write": 5.0, "pool": 5.0}


async def inline_media_urls(
    request: c.Request, transport: httpx.AsyncBaseTransport, max_bytes: int
) -> c.Request:
    """The request with every http(s) image or file URL replaced by a `data:` URL of its bytes."""
    items: list[c.Item] = []
    for index, item in enumerate(request.input):
        param = f"input[{index}]"
        if isinstance(item, c.Message):
            parts = [
                await _inline(p, f"{param}.content[{i}]", transport, max_bytes)
                for i, p in enumerate(item.content)
            ]
            item = item.model_copy(update={"content": tuple(parts)})
        elif isinstance(item, c.FunctionCallOutput) and not isinstance(item.output, str):
            outputs = [
                await _inline(p, f"{param}.output[{i}]", transport, max_bytes)
                for i, p in enumerate(item.output)
            ]
            item = item.model_copy(update={"output": tuple(outputs)})
        items.append(item)
    return request.model_copy(update={"input": tuple(items)})


async def _inline(part: c.Part, param: str, transport: httpx.AsyncBaseTransport, max_bytes: int) -> c.Part:
    if (
        isinstance(part, c.InputImage)
        and part.image_url
        and part.image_url.startswith(("http://", "https://"))
    ):
        data_url = await _fetch(part.image_url, f"{param}.image_url", transport, max_bytes, image=True)
        return part.model_copy(update={"image_url": data_url})
    if isinstance(part, c.InputFile) and part.file_url and part.file_data is None:
        data_url = await _fetch(part.file_url, f"{param}.file_url", transport, max_bytes, image=False)
        filename = part.filename or part.file_url.rsplit("/", 1)[-1] or None
        return part.model_copy(update={"file_data": data_url, "file_url": None, "filename": filename})
    return part


async def _fetch(
    url: str, param: str, transport: httpx.AsyncBaseTransport, max_bytes: int, *, image: bool
) -> str:
    def failed(why: str) -> InvalidRequest:
        code = "failed_to_download_image" if image else "invalid_file_url"
        return InvalidRequest(f"Could not fetch {url}: {why}.", param=param, code=code)

    if not url.startswith(("http://", "https://")):
        raise failed("only http and https URLs are fetched")
    request = httpx.Request("GET", url, extensions={"timeout": _TIMEOUT})
    try:
        response = await transport.handle_async_request(request)
    except httpx.HTTPError as exc:
        raise failed(type(exc).__name__) from None
    try:
        if response.status_code != 200:
            raise failed(f"HTTP {response.status_code}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if image and not media_type.startswith("image/"):
            raise failed(f"not an image ({media_type or 'no content type'})")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise failed(f"larger than {max_bytes} bytes")
    except httpx.HTTPError as exc:
        raise failed(type(exc).__name__) from None
    finally:
        await response.aclose()
    return f"data:{media_type or 'application/octet-stream'};base64,{base64.b64encode(body).decode()}"
