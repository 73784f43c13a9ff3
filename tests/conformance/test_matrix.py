"""One scenario suite, run for every adapter: the real `openai` and openai-agents SDKs against Rosetta in
front of each vendor's byte-exact fake (TensorZero style). A new adapter joins by adding a `Vendor` row.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai.types.shared import Reasoning
from pydantic import BaseModel

from tests.conftest import API_KEY
from tests.fakes._common import FakeUpstream
from tests.helpers import socket_turn
from tests.invariants import check_stream, parse_sse

set_tracing_disabled(True)


@dataclass(frozen=True)
class Vendor:
    provider: str
    fixture: str
    """Name of the pytest fixture giving this vendor's fake (reset per test)."""
    models: dict[str, str]
    """Scenario → the fake's model name for it."""
    call_ids: tuple[str, ...] | None
    """`call_id`s of the recorded single tool call (stream, then JSON recording); None: minted by us."""
    parallel_call_ids: tuple[str, str] | None


VENDORS = {
    "chat": Vendor(
        provider="fake",
        fixture="fake",
        models={
            "text": "fake-text",
            "tool": "fake-tool_call",
            "parallel": "fake-parallel_tool_calls",
            "reasoning": "fake-reasoning_vllm",
            "refusal": "fake-refusal",
            "length": "fake-length",
            "error_midstream": "fake-error_midstream",
            "agent": "fake-agent",
            "echo": "fake-echo",
            "hang": "fake-hang-midstream",
            "overloaded": "fake-error-503",
        },
        call_ids=("call_DpjvsNfnvna8nYyy4L4ODR7F", "call_TOiqKIDak742ndjkRKCX22OG"),
        parallel_call_ids=("call_Bys2jVNOjY0Ha3vL4GXRtNJv", "call_pXkwQLQflIodwlkm2Wvqw47r"),
    ),
    "anthropic": Vendor(
        provider="anthropic",
        fixture="anthropic_fake",
        models={
            "text": "fake-text",
            "tool": "fake-tool_use",
            "parallel": "fake-parallel_tool_use",
            "reasoning": "fake-thinking_text",
            "refusal": "fake-refusal",
            "length": "fake-max_tokens",
            "error_midstream": "fake-error_midstream",
            "agent": "fake-agent",
            "echo": "fake-echo",
            "hang": "fake-hang-midstream",
            "overloaded": "fake-error-529",
        },
        call_ids=("toolu_01z1NHprmEGvBJavUVGkjsHx", "toolu_01frvMN7GFPbtCv89CvQtzFT"),
        parallel_call_ids=("toolu_017gTmsZTNvEneGTUADXxp7Q", "toolu_01EnXC82HYaaKZtp6FsgYiaY"),
    ),
    "gemini": Vendor(
        provider="gemini",
        fixture="gemini_fake",
        models={
            "text": "fake-text",
            "tool": "fake-function_call",
            "parallel": "fake-parallel_function_calls",
            "reasoning": "fake-thought_text",
            "length": "fake-max_tokens",
            "error_midstream": "fake-error_midstream",
            "agent": "fake-agent",
            "echo": "fake-echo",
            "hang": "fake-hang-midstream",
            "overloaded": "fake-error-503",
        },
        call_ids=None,
        parallel_call_ids=None,
    ),
}
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@dataclass
class Route:
    vendor: Vendor
    fake: FakeUpstream
    sdk: openai.OpenAI
    gateway: str

    def model(self, scenario: str) -> str:
        return f"{self.vendor.provider}/{self.vendor.models[scenario]}"

    def events(self, scenario: str, **kwargs: Any) -> list[dict[str, Any]]:
        stream = self.sdk.responses.create(model=self.model(scenario), stream=True, **kwargs)
        return [event.model_dump(mode="json", exclude_unset=True) for event in stream]


def vendors_with(scenario: str) -> list[str]:
    """The vendors that can produce `scenario` (Gemini has no refusal, for instance)."""
    return [name for name, vendor in sorted(VENDORS.items()) if scenario in vendor.models]


@pytest.fixture(params=sorted(VENDORS))
def route(request: pytest.FixtureRequest, gateway: str) -> Iterator[Route]:
    vendor = VENDORS[request.param]
    fake = request.getfixturevalue(vendor.fixture)
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as sdk:
        yield Route(vendor, fake, sdk, gateway)


def test_text_json_and_stream_agree(route: Route) -> None:
    response = route.sdk.responses.create(
        model=route.model("text"), input="Say hello", instructions="Be kind."
    )
    assert response.status == "completed" and response.output_text == "Hello there, friend!"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (
        13,
        6,
        19,
    )
    events = route.events("text", input="Say hello")
    final = check_stream(events)
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert final["output"][0]["content"][0]["text"] == "Hello there, friend!"
    assert final["usage"] == response.usage.model_dump(exclude_none=True)


def test_stream_helper(route: Route) -> None:
    with route.sdk.responses.stream(model=route.model("text"), input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello there, friend!"


def test_tool_call_keeps_the_vendor_call_id(route: Route) -> None:
    final = check_stream(route.events("tool", input="Weather in Paris?", tools=[WEATHER]))
    [call] = [o for o in final["output"] if o["type"] == "function_call"]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris"}
    response = route.sdk.responses.create(
        model=route.model("tool"), input="Weather in Paris?", tools=[WEATHER]
    )
    [json_call] = [o for o in response.output if o.type == "function_call"]
    if route.vendor.call_ids is None:  # the vendor sent no id: one was minted, fresh per call
        assert call["call_id"].startswith("call_") and json_call.call_id.startswith("call_")
        assert call["call_id"] != json_call.call_id
    else:
        assert (call["call_id"], json_call.call_id) == route.vendor.call_ids


def test_parallel_tool_calls(route: Route) -> None:
    final = check_stream(route.events("parallel", input="Paris and Tokyo?", tools=[WEATHER]))
    calls = [o for o in final["output"] if o["type"] == "function_call"]
    ids = [c["call_id"] for c in calls]
    if route.vendor.parallel_call_ids is None:
        assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    else:
        assert ids == list(route.vendor.parallel_call_ids)
    assert [json.loads(c["arguments"])["location"] for c in calls] == ["Paris", "Tokyo"]


def test_reasoning_item_precedes_the_answer(route: Route) -> None:
    final = check_stream(route.events("reasoning", input="hi", reasoning={"summary": "auto"}))
    reasoning, message = final["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"][0]["text"]
    assert message["type"] == "message" and message["content"][0]["text"].strip().startswith("Hello")


@pytest.mark.parametrize("route", vendors_with("refusal"), indirect=True)
def test_refusal_part(route: Route) -> None:
    final = check_stream(route.events("refusal", input="something bad"))
    assert final["status"] == "completed"
    parts = [p for o in final["output"] if o["type"] == "message" for p in o["content"]]
    assert parts[-1]["type"] == "refusal" and parts[-1]["refusal"]


def test_output_budget_exhausted_is_incomplete(route: Route) -> None:
    events = route.events("length", input="Tell me a story")
    final = check_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}


def test_vendor_error_mid_stream_is_response_failed(route: Route) -> None:
    with httpx.Client(base_url=route.gateway, timeout=10) as http:
        body = {"model": route.model("error_midstream"), "input": "x", "stream": True}
        reply = http.post("/v5/responses", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    events = parse_sse(reply.content)
    assert check_stream(events)["status"] == "failed"
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]


def test_overloaded_upstream_is_503(route: Route) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        route.sdk.responses.create(model=route.model("overloaded"), input="x")
    assert info.value.status_code == 503


def test_structured_output_with_parse(route: Route) -> None:
    class Weather(BaseModel):
        city: str
        temp_c: int

    parsed = route.sdk.responses.parse(
        model=route.model("echo"), input='{"city": "Paris", "temp_c": 21}', text_format=Weather
    )
    assert parsed.output_parsed == Weather(city="Paris", temp_c=21)


def test_function_call_round_trip(route: Route) -> None:
    first = route.sdk.responses.create(model=route.model("agent"), input="Weather in Paris?", tools=[WEATHER])
    [call] = [o for o in first.output if o.type == "function_call"]
    history: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        *[o.model_dump(exclude_none=True) for o in first.output],  # output items replayed as input
        {"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"},
    ]
    second = route.sdk.responses.create(model=route.model("agent"), input=history, tools=[WEATHER])
    assert second.output_text == "The tool said: 21C and sunny"


def test_namespaced_tools_go_flat_upstream_and_come_back_split(route: Route) -> None:
    """A `namespace` tool (Codex declares its sub-agent tools so) reaches every vendor as flat functions;
    the call comes back as `name` + `namespace`, in JSON and in the stream, and round-trips as input."""
    crm: Any = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [{**WEATHER, "name": "lookup"}],
    }
    events = route.events("agent", input="Who is Ada?", tools=[crm])
    streamed = check_stream(events)
    added = next(
        e["item"]
        for e in events
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    )
    assert (added["name"], added["namespace"]) == ("lookup", "crm")
    assert streamed["tools"][0]["type"] == "namespace"
    first = route.sdk.responses.create(model=route.model("agent"), input="Who is Ada?", tools=[crm])
    [call] = [o for o in first.output if o.type == "function_call"]
    assert (call.name, call.namespace) == ("lookup", "crm")
    assert "crm__lookup" in json.dumps(route.fake.last_request.body)
    history: Any = [
        {"role": "user", "content": "Who is Ada?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "A mathematician"},
    ]
    second = route.sdk.responses.create(model=route.model("agent"), input=history, tools=[crm])
    assert second.output_text == "The tool said: A mathematician"


def test_stored_state_features(route: Route) -> None:
    """Every stored-state feature through the SDK, per vendor: a tool round trip chained by
    `previous_response_id` (only the tool output sent), input_items, a resumable background stream,
    compact fed back as input, input_tokens, and delete."""
    sdk = route.sdk
    first = sdk.responses.create(model=route.model("agent"), input="Weather in Paris?", tools=[WEATHER])
    [call] = [o for o in first.output if o.type == "function_call"]
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"}]
    second = sdk.responses.create(
        model=route.model("agent"), input=output, tools=[WEATHER], previous_response_id=first.id
    )
    assert second.output_text == "The tool said: 21C and sunny"
    listed = sdk.responses.input_items.list(second.id, order="asc").data
    assert [item.type for item in listed] == [
        "message",
        *(o.type for o in first.output),
        "function_call_output",
    ]

    events = [
        e.model_dump(mode="json", exclude_unset=True)
        for e in sdk.responses.create(model=route.model("text"), input="Hi", background=True, stream=True)
    ]
    final = check_stream(events)
    assert final["status"] == "completed" and events[1]["type"] == "response.queued"
    resumed = sdk.responses.retrieve(final["id"], stream=True, starting_after=2)
    assert [e.model_dump(mode="json", exclude_unset=True) for e in resumed] == events[3:]

    compacted = sdk.responses.compact(model=route.model("text"), previous_response_id=second.id)
    assert [item.type for item in compacted.output] == ["message", "compaction"]
    fed_back: Any = [
        *(item.model_dump(exclude_none=True, warnings=False) for item in compacted.output),
        {"role": "user", "content": "Go on"},
    ]
    assert sdk.responses.create(model=route.model("text"), input=fed_back).status == "completed"
    sent = json.dumps(route.fake.last_request.body)
    assert "Summary of the conversation so far" in sent and "Weather in Paris?" in sent

    assert sdk.responses.input_tokens.count(model=route.model("text"), input="Hello there").input_tokens > 0
    sdk.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(second.id)


def test_tool_round_trip_over_a_websocket_with_store_false(route: Route) -> None:
    """Only the tool output goes in the second turn: the connection supplies the chain, the vendor's call
    id (and any reasoning carrier) included, with nothing stored."""
    with route.sdk.responses.connect() as conn:
        conn.response.create(
            model=route.model("agent"), input="Weather in Paris?", tools=[WEATHER], store=False
        )
        first = _socket_turn(conn)
        [call] = [o for o in first["output"] if o["type"] == "function_call"]
        output: Any = {"type": "function_call_output", "call_id": call["call_id"], "output": "21C and sunny"}
        conn.response.create(
            model=route.model("agent"),
            input=[output],
            tools=[WEATHER],
            store=False,
            previous_response_id=first["id"],
        )
        second = _socket_turn(conn)
    assert second["output"][-1]["content"][0]["text"] == "The tool said: 21C and sunny"
    with pytest.raises(openai.NotFoundError):
        route.sdk.responses.retrieve(first["id"])


def _socket_turn(conn: Any) -> dict[str, Any]:
    events = socket_turn(conn)
    response = check_stream(events)
    assert response["status"] == "completed", events[-1]
    return response


async def test_client_disconnect_cancels_the_upstream(route: Route) -> None:
    body = {"model": route.model("hang"), "input": "x", "stream": True}
    async with (
        httpx.AsyncClient(base_url=route.gateway, timeout=10) as http,
        http.stream(
            "POST", "/v5/responses", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as reply,
    ):
        assert reply.status_code == 200
        received = b""
        async for chunk in reply.aiter_bytes():
            received += chunk
            if b"response.output_text.delta" in received:
                break
    assert await route.fake.until_disconnects(1)


@function_tool
def get_weather(location: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny and 21C in {location}"


@pytest.fixture
async def agent_client(route: Route) -> AsyncIterator[tuple[Route, AsyncIterator[Any] | Any]]:
    client = openai.AsyncOpenAI(base_url=f"{route.gateway}/v5", api_key=API_KEY, max_retries=0)
    yield route, client
    await client.close()


@pytest.mark.parametrize("streamed", [False, True])
async def test_agents_sdk_tool_round_trip(agent_client: tuple[Route, Any], streamed: bool) -> None:
    route, client = agent_client
    agent = Agent(
        name="weather",
        instructions="Answer weather questions with the tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=route.model("agent"), openai_client=client),
    )
    if streamed:
        result = Runner.run_streamed(agent, "What's the weather in Paris?")
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, "What's the weather in Paris?")  # type: ignore[assignment]
    assert result.final_output == "The tool said: Sunny and 21C in Paris"
    assert len(route.fake.requests) == 2


@pytest.mark.parametrize("streamed", [False, True])
async def test_agents_sdk_thinking_round_trip_over_anthropic(
    gateway: str, anthropic_fake: FakeUpstream, streamed: bool
) -> None:
    """Thinking blocks come back byte-exact, signatures included: the fake rejects anything else."""
    async with openai.AsyncOpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as client:
        agent = Agent(
            name="weather",
            instructions="Answer weather questions with the tool.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="anthropic/fake-thinking-agent", openai_client=client),
            model_settings=ModelSettings(reasoning=Reasoning(effort="low"), store=False),
        )
        if streamed:
            result = Runner.run_streamed(agent, "What's the weather in Paris?")
            async for _ in result.stream_events():
                pass
        else:
            result = await Runner.run(agent, "What's the weather in Paris?")  # type: ignore[assignment]
    assert result.final_output == "The tool said: Sunny and 21C in Paris"
    second = anthropic_fake.requests[1].body
    assistant = next(m for m in second["messages"] if m["role"] == "assistant")
    first_reply_thinking = assistant["content"][0]
    assert first_reply_thinking["type"] == "thinking" and first_reply_thinking["signature"]
    assert assistant["content"][1]["type"] == "tool_use"
