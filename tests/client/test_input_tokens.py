"""`POST /v1/responses/input_tokens`: the vendor's own count where it exists, an estimate elsewhere."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import API_KEY
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.chat_completions import FakeChat
from tests.fakes.gemini import FakeGemini

BODY: dict[str, Any] = {"input": "How many tokens is this?", "instructions": "Be brief."}


def count(gateway: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v5/responses/input_tokens",
        json={"model": model, **BODY},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    )


def test_anthropic_count_tokens_endpoint(gateway: str, anthropic_fake: FakeAnthropic) -> None:
    reply = count(gateway, "anthropic/fake-text")
    assert reply.status_code == 200, reply.text
    assert reply.json()["object"] == "response.input_tokens" and reply.json()["input_tokens"] > 0
    sent = anthropic_fake.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body == {
        "model": "fake-text",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "How many tokens is this?"}]}],
        "system": "Be brief.",
    }


def test_gemini_count_tokens_endpoint(gateway: str, gemini_fake: FakeGemini) -> None:
    reply = count(gateway, "gemini/fake-text")
    assert reply.status_code == 200, reply.text
    assert reply.json()["input_tokens"] > 0
    assert gemini_fake.last_request.path.endswith("/models/fake-text:countTokens")
    assert gemini_fake.last_request.body == {
        "generateContentRequest": {
            "model": "models/fake-text",
            "contents": [{"role": "user", "parts": [{"text": "How many tokens is this?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
        }
    }


def test_chat_is_estimated_without_an_upstream_call(gateway: str, fake: FakeChat) -> None:
    reply = count(gateway, "fake/fake-text")
    assert reply.status_code == 200
    # One token per four bytes of the translated body, rounded up: the 127 bytes of
    # {"model":"fake-text","messages":[{"role":"system","content":"Be brief."},{"role":"user",...}]}
    assert reply.json() == {"object": "response.input_tokens", "input_tokens": 32}
    assert fake.requests == []


def test_unknown_model_is_404(gateway: str) -> None:
    assert count(gateway, "nobody/x").status_code == 404
