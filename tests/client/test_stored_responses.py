"""Stored responses: `previous_response_id` across vendors, GET, DELETE and input_items, per team."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.app import create_app
from tests.conftest import API_KEY, OTHER_TEAM_KEY, gateway_settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.chat_completions import FakeChat
from tests.fakes.gemini import FakeGemini
from tests.fakes.server import serve
from tests.helpers import reachable
from tests.invariants import check_stream

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


@pytest.fixture
def sdk(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as client:
        yield client


def test_a_chain_can_switch_vendors(
    sdk: openai.OpenAI, fake: FakeChat, anthropic_fake: FakeAnthropic
) -> None:
    first = sdk.responses.create(model="fake/fake-text", input="Say hello", instructions="Be kind.")
    second = sdk.responses.create(
        model="anthropic/fake-echo", input="Now echo this", previous_response_id=first.id
    )
    assert second.output_text == "Now echo this"
    assert second.previous_response_id == first.id
    sent = anthropic_fake.last_request.body
    assert "system" not in sent  # instructions do not carry over a chain
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello there, friend!"}]},
        {"role": "user", "content": [{"type": "text", "text": "Now echo this"}]},
    ]


def test_streamed_reply_is_stored_before_its_terminal_event(
    sdk: openai.OpenAI, gemini_fake: FakeGemini
) -> None:
    """A Gemini tool round trip over `previous_response_id`: the function name and the thought signature
    come back from the store (the fake rejects a replayed call without its signature)."""
    events = [
        e.model_dump(mode="json", exclude_unset=True)
        for e in sdk.responses.create(
            model="gemini/fake-agent", input="Weather in Paris?", tools=[WEATHER], stream=True
        )
    ]
    first = check_stream(events)
    [call] = [o for o in first["output"] if o["type"] == "function_call"]
    second = sdk.responses.create(
        model="gemini/fake-agent",
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "21C"}],
        tools=[WEATHER],
    )
    assert second.output_text == "The tool said: 21C"
    turns = gemini_fake.last_request.body["contents"]
    assert turns[1]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert turns[1]["parts"][0]["thoughtSignature"] not in (None, "skip_thought_signature_validator")
    assert turns[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_anthropic_thinking_survives_a_chain(sdk: openai.OpenAI, anthropic_fake: FakeAnthropic) -> None:
    first = sdk.responses.create(
        model="anthropic/fake-thinking-agent",
        input="Weather in Paris?",
        tools=[WEATHER],
        reasoning={"effort": "low"},
    )
    [call] = [o for o in first.output if o.type == "function_call"]
    second = sdk.responses.create(
        model="anthropic/fake-thinking-agent",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "21C"}],
        tools=[WEATHER],
        reasoning={"effort": "low"},
    )
    assert second.output_text == "The tool said: 21C"


def test_get_delete_and_input_items(gateway: str, sdk: openai.OpenAI, fake: FakeChat) -> None:
    first = sdk.responses.create(model="fake/fake-text", input="Say hello")
    second = sdk.responses.create(
        model="fake/fake-text",
        previous_response_id=first.id,
        input=[{"role": "user", "content": "again"}, {"role": "user", "content": "and again"}],
    )
    fetched = sdk.responses.retrieve(second.id)
    assert fetched.model_dump() == second.model_dump()

    items = sdk.responses.input_items.list(second.id, order="asc")
    texts = [i.content[0].text for i in items.data if i.type == "message"]  # type: ignore[union-attr]
    assert texts == ["Say hello", "Hello there, friend!", "again", "and again"]
    assert all(i.id for i in items.data)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        page = http.get(f"/v1/responses/{second.id}/input_items", params={"limit": 2}).json()
        assert [i["content"][0]["text"] for i in page["data"]] == ["and again", "again"]
        assert page["has_more"] is True and page["first_id"] == page["data"][0]["id"]
        rest = http.get(f"/v1/responses/{second.id}/input_items", params={"after": page["last_id"]}).json()
        assert len(rest["data"]) == 2 and rest["has_more"] is False
        bad = http.get(f"/v1/responses/{second.id}/input_items", params={"limit": 0})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"

    sdk.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError) as info:
        sdk.responses.retrieve(second.id)
    assert info.value.code == "response_not_found"


def test_other_teams_and_unstored_responses_are_not_found(
    gateway: str, sdk: openai.OpenAI, fake: FakeChat
) -> None:
    mine = sdk.responses.create(model="fake/fake-text", input="Say hello")
    background = sdk.responses.create(model="fake/fake-hang-midstream", input="x", background=True)
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=OTHER_TEAM_KEY, max_retries=0) as other:
        for attempt in (
            lambda: other.responses.retrieve(mine.id),
            lambda: other.responses.delete(mine.id),
            lambda: other.responses.input_items.list(mine.id),
            lambda: other.responses.cancel(background.id),
            lambda: other.responses.retrieve(background.id, stream=True),
        ):
            with pytest.raises(openai.NotFoundError):
                attempt()
        with pytest.raises(openai.NotFoundError) as info:
            other.responses.create(model="fake/fake-text", input="x", previous_response_id=mine.id)
        assert info.value.code == "previous_response_not_found"
    assert sdk.responses.retrieve(mine.id).id == mine.id  # untouched by the other team's attempts
    assert sdk.responses.cancel(background.id).status == "cancelled"
    unstored = sdk.responses.create(model="fake/fake-text", input="Say hello", store=False)
    assert unstored.model_dump()["store"] is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_replicas_share_state_through_a_shared_store(
    kind: str, fake_upstream: tuple[FakeChat, str], anthropic_fake: FakeAnthropic
) -> None:
    """Two gateway replicas, one shared store: a chain started on one continues on the other."""
    port = {"redis": 6379, "postgres": 5432}[kind]
    if not reachable(port):
        pytest.skip(f"no {kind} on 127.0.0.1:{port}")
    url = {"redis": "redis://127.0.0.1:6379/0", "postgres": "postgresql://127.0.0.1:5432/test"}[kind]
    settings = gateway_settings(fake_upstream[1], store={"kind": kind, "url": url})
    with serve(create_app(settings)) as one, serve(create_app(settings)) as two:
        with openai.OpenAI(base_url=f"{one}/v5", api_key=API_KEY, max_retries=0) as first_replica:
            first = first_replica.responses.create(model="fake/fake-text", input="Say hello")
        with openai.OpenAI(base_url=f"{two}/v5", api_key=API_KEY, max_retries=0) as second_replica:
            assert second_replica.responses.retrieve(first.id).output_text == "Hello there, friend!"
            second = second_replica.responses.create(
                model="fake/fake-echo", input="and now", previous_response_id=first.id
            )
    assert second.output_text == "and now"
    assert [m["role"] for m in fake_upstream[0].last_request.body["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


def test_an_unreachable_store_is_a_503_for_requests_that_need_it(fake_upstream: tuple[FakeChat, str]) -> None:
    settings = gateway_settings(fake_upstream[1], store={"kind": "redis", "url": "redis://127.0.0.1:1/0"})
    with (
        serve(create_app(settings)) as base,
        openai.OpenAI(base_url=f"{base}/v5", api_key=API_KEY, max_retries=0) as sdk,
    ):
        with pytest.raises(openai.InternalServerError) as info:
            sdk.responses.create(model="fake/fake-text", input="x")
        assert info.value.status_code == 503 and info.value.code == "store_unavailable"
        with pytest.raises(openai.InternalServerError):
            sdk.responses.retrieve("resp_any")
        with pytest.raises(openai.InternalServerError):
            sdk.responses.create(model="fake/fake-text", input="x", previous_response_id="resp_any")
        assert sdk.responses.create(model="fake/fake-text", input="x", store=False).output_text
        streamed = list(sdk.responses.create(model="fake/fake-text", input="x", stream=True))
        assert streamed[-1].type == "response.completed"  # delivered whole; only storing it failed


def test_item_references_resolve_to_the_teams_stored_items(
    gateway: str, sdk: openai.OpenAI, fake: FakeChat, anthropic_fake: FakeAnthropic
) -> None:
    call = sdk.responses.create(model="fake/fake-tool_call", input="Weather in Paris?", tools=[WEATHER])
    (function_call,) = [item for item in call.output if item.type == "function_call"]
    question = sdk.responses.input_items.list(call.id).data[0]
    assert question.id is not None and function_call.id is not None
    references: Any = [
        {"type": "item_reference", "id": question.id},
        {"type": "item_reference", "id": function_call.id},
        {"type": "function_call_output", "call_id": function_call.call_id, "output": "18C"},
        {"role": "user", "content": "Summarise."},
    ]
    answer = sdk.responses.create(
        model="anthropic/fake-echo",  # another vendor: references are resolved before any adapter runs
        input=references,
        tools=[WEATHER],
    )
    sent = anthropic_fake.last_request.body["messages"]
    assert sent[0] == {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[1]["content"][0]["id"] == function_call.call_id
    assert sent[2]["content"][0]["tool_use_id"] == function_call.call_id
    listed = sdk.responses.input_items.list(answer.id, order="asc").data
    assert [(item.type, item.id) for item in listed[:2]] == [
        ("message", question.id),
        ("function_call", function_call.id),
    ]

    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=OTHER_TEAM_KEY, max_retries=0) as other:
        for reference in (function_call.id, "msg_never_stored"):
            with pytest.raises(openai.NotFoundError) as missing:
                other.responses.create(
                    model="fake/fake-text", input=[{"type": "item_reference", "id": reference}]
                )
            assert missing.value.body == {
                "message": f"Item with id '{reference}' not found. Only items of stored responses can be "
                "referenced.",
                "type": "invalid_request_error",
                "param": "input[0].id",
                "code": "item_not_found",
            }
