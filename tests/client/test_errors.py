"""Errors: OpenAI's shape and sensible statuses for bad input, auth, routing and every upstream failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import API_KEY, MAX_BODY, UPSTREAM_KEY
from tests.fakes.chat_completions import FakeChat, Reply
from tests.invariants import check_stream, parse_sse

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def http(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=10) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("content", "status", "param", "code"),
    [
        (b"{oops", 400, None, "invalid_json"),
        (orjson.dumps({"model": "m-text", "input": 12345}), 400, "input", "invalid_type"),
        (
            orjson.dumps({"model": "m-text", "input": "x", "temperature": "hot"}),
            400,
            "temperature",
            "invalid_type",
        ),
        (
            orjson.dumps({"model": "m-text", "max_output_tokens": "lots"}),
            400,
            "max_output_tokens",
            "invalid_type",
        ),
        (orjson.dumps({"model": "no-such-model", "input": "x"}), 404, None, "model_not_found"),
        (
            orjson.dumps(
                {
                    "model": "m-text",
                    "input": [{"type": "function_call_output", "call_id": "c1", "output": "1"}],
                }
            ),
            400,
            "input[0]",
            None,
        ),
        (
            orjson.dumps({"model": "m-text", "input": "x", "previous_response_id": "resp_unknown"}),
            404,
            "previous_response_id",
            "previous_response_not_found",
        ),
    ],
)
def test_bad_requests_never_reach_the_upstream(
    http: httpx.Client, fake: FakeChat, content: bytes, status: int, param: str | None, code: str | None
) -> None:
    v5_content = content.replace(b'"m-text"', b'"fake/fake-text"').replace(b'"no-such-model"', b'"fake"')
    for path, body in (("/v1/responses", content), ("/v5/responses", v5_content)):
        reply = http.post(path, content=body, headers=AUTH)
        assert reply.status_code == status
        error = error_of(reply)
        assert (error["param"], error["code"]) == (param, code)
        assert error["type"] == "invalid_request_error"
    assert fake.requests == []


def test_v5_needs_a_configured_vendor(http: httpx.Client) -> None:
    for model in ("nobody/gpt-4o", "fake", "fake/"):
        reply = http.post("/v5/responses", json={"model": model, "input": "x"}, headers=AUTH)
        assert reply.status_code == 404 and error_of(reply)["code"] == "model_not_found"


def test_authentication(http: httpx.Client, fake: FakeChat) -> None:
    body = {"model": "m-text", "input": "x"}
    missing = http.post("/v1/responses", json=body)
    assert missing.status_code == 401 and error_of(missing)["code"] == "invalid_api_key"
    wrong = http.post("/v1/responses", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert http.get("/v1/models").status_code == 401
    assert http.post("/v1/responses", json=body, headers={"x-api-key": API_KEY}).status_code == 200
    assert len(fake.requests) == 1


def test_body_over_the_limit_is_413(http: httpx.Client, fake: FakeChat) -> None:
    big = orjson.dumps({"model": "m-text", "input": "x" * MAX_BODY})
    reply = http.post("/v1/responses", content=big, headers=AUTH)
    assert reply.status_code == 413 and error_of(reply)["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield big

    reply = http.post("/v1/responses", content=chunks(), headers=AUTH)
    assert reply.status_code == 413
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "status", "code", "sdk_error"),
    [
        ("fake-error-400", 400, "context_length_exceeded", openai.BadRequestError),
        ("fake-error-400-flat", 400, "400", openai.BadRequestError),
        ("fake-error-401", 502, "upstream_error", openai.InternalServerError),
        ("fake-error-429", 429, "rate_limit_exceeded", openai.RateLimitError),
        ("fake-error-500", 502, "upstream_error", openai.InternalServerError),
        ("fake-error-503", 503, "upstream_overloaded", openai.InternalServerError),
        ("fake-slow", 504, "upstream_timeout", openai.InternalServerError),
    ],
)
def test_upstream_failures_keep_their_class(
    http: httpx.Client, gateway: str, model: str, status: int, code: str, sdk_error: type[Exception]
) -> None:
    for stream in (False, True):
        reply = http.post(
            "/v5/responses", json={"model": f"fake/{model}", "input": "x", "stream": stream}, headers=AUTH
        )
        assert reply.status_code == status
        assert reply.headers["content-type"] == "application/json"
        error = error_of(reply)
        assert error["code"] == code
        assert UPSTREAM_KEY not in reply.text
        if status == 429:
            assert reply.headers["retry-after"] == "7"
    with (
        openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as sdk,
        pytest.raises(sdk_error),
    ):
        sdk.responses.create(model=f"fake/{model}", input="x")


def test_unreachable_upstream_is_502(http: httpx.Client) -> None:
    reply = http.post("/v5/responses", json={"model": "down/x", "input": "x"}, headers=AUTH)
    assert reply.status_code == 502 and error_of(reply)["code"] == "upstream_error"


def test_failure_after_the_stream_started_is_response_failed(http: httpx.Client, gateway: str) -> None:
    body = {"model": "fake/fake-error_midstream", "input": "x", "stream": True}
    with http.stream("POST", "/v5/responses", json=body, headers=AUTH) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = parse_sse(reply.read())
    final = check_stream(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["error"]["message"].startswith("The server had an error")
    assert final["status"] == "failed" and final["error"]["code"] == "server_error"
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as sdk:
        stream = sdk.responses.create(model="fake/fake-error_midstream", input="x", stream=True)
        with pytest.raises(openai.APIError, match="The server had an error"):
            list(stream)


async def test_client_disconnect_cancels_the_upstream_request(gateway: str, fake: FakeChat) -> None:
    body = {"model": "fake/fake-hang-midstream", "input": "x", "stream": True}
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
        async with http.stream("POST", "/v5/responses", json=body, headers=AUTH) as reply:
            assert reply.status_code == 200
            received = b""
            chunks: AsyncIterator[bytes] = reply.aiter_bytes()
            async for chunk in chunks:
                received += chunk
                if b"response.output_text.delta" in received:
                    break
    assert await fake.until_disconnects(1)
    assert fake.last_request.disconnected


def test_models_and_health(http: httpx.Client) -> None:
    models = http.get("/v1/models", headers=AUTH)
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == sorted(m["id"] for m in models.json()["data"])
    assert "m-text" in [m["id"] for m in models.json()["data"]]
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    unknown = http.get("/v1/nothing")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "unknown_url"
    wrong_method = http.get("/v1/responses", headers=AUTH)
    assert wrong_method.status_code == 405 and error_of(wrong_method)["type"] == "invalid_request_error"


def test_vendor_messages_never_leak_credentials(http: httpx.Client, fake: FakeChat) -> None:
    leaky = {
        "error": {
            "message": f"Incorrect API key provided: {UPSTREAM_KEY}. Also sk-other-key-abcdefghij.",
            "type": "invalid_request_error",
            "param": None,
            "code": "bad",
        }
    }
    fake.scenarios["fake-leaky"] = Reply(400, orjson.dumps(leaky), {"content-type": "application/json"})
    reply = http.post("/v5/responses", json={"model": "fake/fake-leaky", "input": "x"}, headers=AUTH)
    assert reply.status_code == 400
    assert error_of(reply)["message"] == "Incorrect API key provided: [redacted]. Also [redacted]."
