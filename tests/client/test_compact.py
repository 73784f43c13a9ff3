"""`POST /v1/responses/compact`: a model-written summary, sealed, standing for the history on any vendor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.handlers import SUMMARY_REQUEST
from gateway.intake import COMPACTED_PREFIX
from tests.conftest import API_KEY
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.chat_completions import FakeChat

HISTORY: list[Any] = [
    {"role": "user", "content": "My name is Alice."},
    {"role": "assistant", "content": "Hello Alice!"},
]


@pytest.fixture
def http(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as client:
        yield client


def test_compaction_summarises_and_feeds_back_on_another_vendor(
    http: httpx.Client, gateway: str, fake: FakeChat, anthropic_fake: FakeAnthropic
) -> None:
    reply = http.post(
        "/v5/responses/compact", json={"model": "fake/fake-echo", "input": HISTORY, "prompt_cache_key": "k"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-rosetta-dropped-params"] == "prompt_cache_key"
    compacted = reply.json()
    assert compacted["object"] == "response.compaction" and compacted["id"].startswith("resp_")
    *users, compaction = compacted["output"]
    assert [u["content"][0]["text"] for u in users] == ["My name is Alice."]
    assert users[0]["status"] == "completed" and users[0]["id"]
    assert compaction["type"] == "compaction" and compaction["encrypted_content"].startswith("rosetta:v1:")
    assert compacted["usage"]["total_tokens"] > 0
    assert fake.last_request.body["messages"][-1] == {"role": "user", "content": SUMMARY_REQUEST}

    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as sdk:
        answer = sdk.responses.create(
            model="anthropic/fake-echo",
            input=[*compacted["output"], {"role": "user", "content": "What is my name?"}],
        )
    assert answer.status == "completed"
    sent = anthropic_fake.last_request.body
    assert sent["system"] == COMPACTED_PREFIX + SUMMARY_REQUEST  # fake-echo summarised with the request text
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "My name is Alice."},
                {"type": "text", "text": "What is my name?"},
            ],
        }
    ]


def test_foreign_or_tampered_compactions_are_refused(http: httpx.Client) -> None:
    item = {"type": "compaction", "encrypted_content": "opaque-openai-blob"}
    reply = http.post("/v5/responses", json={"model": "fake/fake-echo", "input": [item]})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "input[0].encrypted_content"


def test_compact_needs_a_model(http: httpx.Client) -> None:
    reply = http.post("/v1/responses/compact", json={"input": HISTORY})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "model"
