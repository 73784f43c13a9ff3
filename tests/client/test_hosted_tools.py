"""Hosted tools (`web_search`, `file_search`, …) are not served: a 400 naming the tool, unless the operator
lists the type in `server.drop_tool_types`, which removes it and says so in `x-rosetta-dropped-params`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from websockets.sync.client import connect

from gateway.app import create_app
from tests.conftest import API_KEY, gateway_settings
from tests.fakes.chat_completions import FakeChat
from tests.fakes.server import serve

TOOLS: Any = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "web_search"},
]


@pytest.fixture
def dropping(fake_upstream: tuple[FakeChat, str]) -> Iterator[str]:
    settings = gateway_settings(fake_upstream[1])
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"drop_tool_types": ["web_search"]})}
    )
    with serve(create_app(settings)) as base_url:
        yield base_url


def test_a_hosted_tool_is_refused_by_name(gateway: str) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="m-agent", input="Weather?", tools=TOOLS)
    assert refused.value.body is not None
    assert refused.value.body["param"] == "tools[1].type"  # type: ignore[index]
    assert refused.value.body["code"] == "unsupported_parameter"  # type: ignore[index]


def test_an_operator_may_have_it_dropped_and_reported(dropping: str, fake: FakeChat) -> None:
    with openai.OpenAI(base_url=f"{dropping}/v1", api_key=API_KEY, max_retries=0) as client:
        reply = client.responses.with_raw_response.create(model="m-agent", input="Weather?", tools=TOOLS)
        streamed = client.responses.with_raw_response.create(
            model="m-agent", input="Weather?", tools=TOOLS, stream=True
        )
    assert reply.headers["x-rosetta-dropped-params"] == "tools[1]"
    assert streamed.headers["x-rosetta-dropped-params"] == "tools[1]"
    response = reply.parse()
    assert [tool.type for tool in response.tools] == ["function"]
    assert [tool["function"]["name"] for tool in fake.last_request.body["tools"]] == ["get_weather"]


def test_over_a_websocket_a_drop_is_refused_as_there_is_no_header(dropping: str) -> None:
    url = f"ws://{dropping.removeprefix('http://')}/v1/responses"
    with connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as ws:
        ws.send(
            orjson.dumps(
                {"type": "response.create", "model": "m-agent", "input": "x", "tools": TOOLS}
            ).decode()
        )
        frame = orjson.loads(ws.recv())
    assert (frame["status"], frame["error"]["param"]) == (400, "tools[1]")


def test_compact_reports_the_drops_too(dropping: str) -> None:
    with openai.OpenAI(base_url=f"{dropping}/v1", api_key=API_KEY, max_retries=0) as client:
        reply = client.responses.with_raw_response.compact(
            model="m-text", input="Remember this.", prompt_cache_key="k", extra_body={"tools": TOOLS}
        )
    assert reply.headers["x-rosetta-dropped-params"] == "tools[1],prompt_cache_key"
