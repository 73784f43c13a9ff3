"""The official `openai` SDK against Rosetta over Chat Completions: exactly what reaches the upstream.

Behaviour common to every adapter is in tests/conformance/test_matrix.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.conftest import API_KEY, UPSTREAM_KEY
from tests.fakes.chat_completions import FakeChat
from tests.invariants import check_stream

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
    "strict": True,
}


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def v5(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as client:
        yield client


def stream_events(client: openai.OpenAI, **kwargs: Any) -> list[dict[str, Any]]:
    stream = client.responses.create(stream=True, **kwargs)
    return [event.model_dump(mode="json", exclude_unset=True) for event in stream]


def test_json_reply_through_v1_and_v5(client: openai.OpenAI, v5: openai.OpenAI, fake: FakeChat) -> None:
    for sdk, model in ((client, "m-text"), (v5, "fake/fake-text")):
        response = sdk.responses.create(model=model, input="Say hello", instructions="Be kind.")
        assert response.status == "completed"
        assert response.model == model
        assert response.output_text == "Hello there, friend!"
        assert response.instructions == "Be kind."
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
            13,
            6,
            19,
        )
        assert response.id.startswith("resp_") and str(response.output[0].id).startswith("msg_")
        sent = fake.last_request.body
        assert sent["model"] == "fake-text"
        assert sent["messages"] == [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Say hello"},
        ]
        assert fake.last_request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_tool_call_keeps_the_upstream_call_id(client: openai.OpenAI, fake: FakeChat) -> None:
    response = client.responses.create(
        model="m-tool_call", input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required"
    )
    assert response.status == "completed"
    [call] = response.output
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == (
        "call_TOiqKIDak742ndjkRKCX22OG",
        "get_weather",
        '{"location":"Paris"}',
    )
    assert fake.last_request.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert fake.last_request.body["tool_choice"] == "required"
    assert response.tools[0].model_dump()["name"] == "get_weather" and response.tool_choice == "required"


def test_reasoning_becomes_a_reasoning_item(client: openai.OpenAI) -> None:
    events = stream_events(client, model="m-reasoning_vllm", input="hi")
    final = check_stream(events)
    reasoning, message = final["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["content"] == [
        {"type": "reasoning_text", "text": "Okay, the user greeted me. I'll reply warmly.\n"}
    ]
    assert message["content"][0]["text"] == "\n\nHello there, friend!"
    summarised = client.responses.create(model="m-reasoning_vllm", input="hi", reasoning={"summary": "auto"})
    assert summarised.output[0].type == "reasoning"
    assert summarised.output[0].summary[0].text.startswith("Okay, the user")


@pytest.mark.parametrize(
    ("case", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_cut_short_replies_are_incomplete(v5: openai.OpenAI, case: str, reason: str) -> None:
    events = stream_events(v5, model=f"fake/fake-{case}", input="Tell me a story")
    final = check_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": reason}
    response = v5.responses.create(model=f"fake/fake-{case}", input="Tell me a story")
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == reason


def test_structured_output_with_parse(client: openai.OpenAI, fake: FakeChat) -> None:
    class Weather(BaseModel):
        city: str
        temp_c: int

    parsed = client.responses.parse(
        model="m-echo", input='{"city": "Paris", "temp_c": 21}', text_format=Weather
    )
    assert parsed.output_parsed == Weather(city="Paris", temp_c=21)
    format_sent = fake.last_request.body["response_format"]
    assert format_sent["type"] == "json_schema"
    assert format_sent["json_schema"]["name"] == "Weather"
    assert format_sent["json_schema"]["strict"] is True
    assert format_sent["json_schema"]["schema"]["properties"] == Weather.model_json_schema()["properties"]


def test_function_call_round_trip_sends_chat_tool_messages(client: openai.OpenAI, fake: FakeChat) -> None:
    first = client.responses.create(model="m-agent", input="Weather in Paris?", tools=[WEATHER_TOOL])
    [call] = first.output
    assert call.type == "function_call"
    second = client.responses.create(
        model="m-agent",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == "The tool said: 21C and sunny"
    assert fake.last_request.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "21C and sunny"},
    ]


def test_model_defaults_are_sent_and_echoed(client: openai.OpenAI, fake: FakeChat) -> None:
    response = client.responses.create(model="m-defaults", input="echo me", top_p=0.5)
    assert response.output_text == "echo me"
    assert (response.max_output_tokens, response.temperature, response.top_p) == (100, 0.3, 0.5)
    sent = fake.last_request.body
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (100, 0.3, 0.5)
