"""The openai-agents SDK drives a function-tool round trip through Rosetta, plain and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from tests.conftest import API_KEY
from tests.fakes.chat_completions import FakeChat

set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI


@function_tool
def get_weather(location: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny and 21C in {location}"


@pytest.fixture
async def agent(gateway: str) -> AsyncIterator[Agent]:
    client = AsyncOpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0)
    yield Agent(
        name="weather",
        instructions="Answer weather questions with the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="m-agent", openai_client=client),
    )
    await client.close()


def tool_messages(fake: FakeChat) -> list[dict[str, object]]:
    return [m for m in fake.last_request.body["messages"] if m["role"] == "tool"]


async def test_agent_tool_round_trip(agent: Agent, fake: FakeChat) -> None:
    result = await Runner.run(agent, "What's the weather in Paris?")
    assert result.final_output == "The tool said: Sunny and 21C in Paris"
    assert len(fake.requests) == 2
    [assistant] = [m for m in fake.last_request.body["messages"] if m["role"] == "assistant"]
    call_id = assistant["tool_calls"][0]["id"]
    assert call_id.startswith("call_") and assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert fake.last_request.body["messages"][0] == {
        "role": "system",
        "content": "Answer weather questions with the tool.",
    }
    assert tool_messages(fake) == [
        {"role": "tool", "tool_call_id": call_id, "content": "Sunny and 21C in Paris"}
    ]


async def test_agent_tool_round_trip_streamed(agent: Agent, fake: FakeChat) -> None:
    result = Runner.run_streamed(agent, "What's the weather in Paris?")
    kinds = [event.type async for event in result.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert result.final_output == "The tool said: Sunny and 21C in Paris"
    assert all(r.stream for r in fake.requests) and len(fake.requests) == 2
