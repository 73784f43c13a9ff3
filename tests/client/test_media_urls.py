"""Media by URL for upstreams that only take inline data: refused by name, or fetched when enabled."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import API_KEY
from tests.fakes.gemini import FakeGemini
from tests.fakes.server import serve

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
FILES = {
    "/red.png": (PNG, "image/png"),
    "/big.png": (b"\x89PNG" + b"0" * 2000, "image/png"),
    "/page.html": (b"<html></html>", "text/html"),
    "/doc.pdf": (b"%PDF-1.4 tiny", "application/pdf"),
}


async def _serve_file(request: Request) -> Response:
    if request.url.path not in FILES:
        return Response(status_code=404)
    body, media_type = FILES[request.url.path]
    return Response(body, media_type=media_type)


@pytest.fixture(scope="module")
def media() -> Iterator[str]:
    with serve(Starlette(routes=[Route("/{name}", _serve_file)])) as base_url:
        yield base_url


def post(gateway: str, model: str, content: list[dict[str, Any]]) -> httpx.Response:
    body = {"model": model, "input": [{"role": "user", "content": content}]}
    return httpx.post(
        f"{gateway}/v5/responses", json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )


def test_urls_are_refused_by_name_unless_fetching_is_enabled(
    gateway: str, media: str, gemini_fake: FakeGemini
) -> None:
    reply = post(gateway, "gemini/fake-echo", [{"type": "input_image", "image_url": f"{media}/red.png"}])
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[0].content[0].image_url"
    assert gemini_fake.requests == []


def test_enabled_fetching_inlines_images_and_files(gateway: str, media: str, gemini_fake: FakeGemini) -> None:
    reply = post(
        gateway,
        "gemini-fetch/fake-echo",
        [
            {"type": "input_text", "text": "describe"},
            {"type": "input_image", "image_url": f"{media}/red.png"},
            {"type": "input_file", "file_url": f"{media}/doc.pdf"},
        ],
    )
    assert reply.status_code == 200, reply.text
    parts = gemini_fake.last_request.body["contents"][0]["parts"]
    assert parts == [
        {"text": "describe"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(b"%PDF-1.4 tiny").decode()}},
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.png", "HTTP 404"),
        ("/page.html", "not an image (text/html)"),
        ("/big.png", "larger than 1000 bytes"),
    ],
)
def test_fetch_failures_are_the_callers_400(
    gateway: str, media: str, gemini_fake: FakeGemini, path: str, message: str
) -> None:
    reply = post(gateway, "gemini-fetch/fake-echo", [{"type": "input_image", "image_url": f"{media}{path}"}])
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == ("input[0].content[0].image_url", "failed_to_download_image")
    assert error["message"] == f"Could not fetch {media}{path}: {message}."
    assert gemini_fake.requests == []
