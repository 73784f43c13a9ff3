"""End to end: the official `openai` SDK → Rosetta → a real llama.cpp server. Structure, not wording.

Every test runs over both protocols the server speaks: Chat Completions (`local`) and Anthropic Messages
(`local-messages`), through their adapters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI

from tests.e2e.conftest import API_KEY
from tests.helpers import socket_turn
from tests.invariants import check_stream

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@pytest.fixture
def client(local_gateway: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=local_gateway, api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture(params=["local", "local-messages"])
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_json_reply(client: OpenAI, model: str) -> None:
    response = client.responses.create(model=model, input="Say hello to Alice.", temperature=0)
    assert response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete")
    assert response.model == model
    assert response.max_output_tokens == 48  # the model's default from config, echoed
    message = response.output[-1]
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].text.strip()
    assert response.output_text == message.content[0].text
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_streamed_reply(client: OpenAI, model: str) -> None:
    stream = client.responses.create(model=model, input="Count from 1 to 5.", stream=True, temperature=0)
    events = [event.model_dump(mode="json", exclude_unset=True) for event in stream]
    final = check_stream(events)
    assert final["status"] in ("completed", "incomplete")
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas.strip() and deltas == final["output"][-1]["content"][0]["text"]

    with client.responses.stream(model=model, input="Name a colour.", temperature=0) as helper:
        texts = [event.delta for event in helper if event.type == "response.output_text.delta"]
        response = helper.get_final_response()
    assert "".join(texts) == response.output_text and response.output_text.strip()


def test_multi_turn_conversation(client: OpenAI, model: str) -> None:
    response = client.responses.create(
        model=model,
        input=[
            {"role": "system", "content": "You are a friendly assistant."},
            {"role": "user", "content": "My name is Alice."},
            {"role": "assistant", "content": "Hello Alice! How can I help you today?"},
            {"role": "user", "content": "What is my name?"},
        ],
        temperature=0,
    )
    assert response.status in ("completed", "incomplete")
    assert response.output[-1].type == "message" and response.output_text.strip()


def test_function_call_round_trip(client: OpenAI, model: str) -> None:
    """The prefill recipe from shared/reference/local-model-server.md makes the tiny model call the tool."""
    question: Any = {"role": "user", "content": "What is the weather in Paris?"}
    first = client.responses.create(
        model=model,
        input=[question, {"role": "assistant", "content": "<tool_call>\n"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        max_output_tokens=60,
        temperature=0,
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls, first.output
    for call in calls:
        assert call.name == "get_weather" and call.call_id and str(call.id).startswith("fc_")
        assert isinstance(json.loads(call.arguments), dict)

    history: list[Any] = [question]
    for call in calls:
        history.append(
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments}
        )
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'})
    second = client.responses.create(model=model, input=history, tools=[WEATHER_TOOL], temperature=0)
    assert second.status in ("completed", "incomplete")
    assert second.output, second


def test_store_false_continuation_over_a_websocket(client: OpenAI, model: str) -> None:
    """The chain a store:false continuation needs comes from the connection, through a real server."""
    with client.responses.connect() as conn:
        conn.response.create(model=model, input="My name is Alice.", store=False, max_output_tokens=16)
        first = _socket_turn(conn)
        conn.response.create(
            model=model,
            input="What is my name?",
            store=False,
            previous_response_id=first["id"],
            max_output_tokens=16,
        )
        second = _socket_turn(conn)
    assert second["previous_response_id"] == first["id"]
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]  # the first turn went up again


def _socket_turn(conn: Any) -> dict[str, Any]:
    response = check_stream(socket_turn(conn))
    assert response["output"][-1]["type"] == "message"
    return response
