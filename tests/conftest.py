"""Shared fixtures: Rosetta served by uvicorn on 127.0.0.1 in front of fake vendor upstreams.

Real sockets on both sides (not ASGITransport or TestClient, which buffer bodies and never report a
client disconnect), so streaming, chunking and cancellation behave as in production.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.loader import parse_settings
from config.models import Settings
from gateway.app import create_app
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.chat_completions import FakeChat
from tests.fakes.gemini import FakeGemini
from tests.fakes.server import serve

API_KEY = "rosetta-client-test-key"
OTHER_TEAM_KEY = "rosetta-other-team-key"
UPSTREAM_KEY = "sk-upstream-secret-0123456789"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[tuple[FakeChat, str]]:
    fake = FakeChat(api_key=UPSTREAM_KEY)
    with serve(fake) as base_url:
        yield fake, f"{base_url}/v1"


@pytest.fixture
def fake(fake_upstream: tuple[FakeChat, str]) -> FakeChat:
    fake_upstream[0].reset()
    return fake_upstream[0]


@pytest.fixture(scope="session")
def fake_anthropic_upstream() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(api_key=UPSTREAM_KEY)
    with serve(fake) as base_url:
        yield fake, f"{base_url}/v1"


@pytest.fixture
def anthropic_fake(fake_anthropic_upstream: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    fake_anthropic_upstream[0].reset()
    return fake_anthropic_upstream[0]


@pytest.fixture(scope="session")
def fake_gemini_upstream() -> Iterator[tuple[FakeGemini, str]]:
    fake = FakeGemini(api_key=UPSTREAM_KEY)
    with serve(fake) as base_url:
        yield fake, f"{base_url}/v1beta"


@pytest.fixture
def gemini_fake(fake_gemini_upstream: tuple[FakeGemini, str]) -> FakeGemini:
    fake_gemini_upstream[0].reset()
    return fake_gemini_upstream[0]


def gateway_settings(
    upstream_url: str,
    anthropic_url: str = "http://127.0.0.1:9/v1",
    gemini_url: str = "http://127.0.0.1:9/v1beta",
    store: dict[str, str] | None = None,
) -> Settings:
    scenarios = ["text", "tool_call", "parallel_tool_calls", "agent", "echo", "reasoning_vllm", "refusal"]
    return parse_settings(
        {
            "server": {"max_body_bytes": MAX_BODY},
            "store": store or {"kind": "sqlite", "path": ":memory:"},
            "keys": [{"key": API_KEY, "team": "test"}, {"key": OTHER_TEAM_KEY, "team": "other"}],
            "providers": {
                "fake": {
                    "kind": "chat_completions",
                    "base_url": upstream_url,
                    "api_key": UPSTREAM_KEY,
                    "timeouts": {"read": 1.5},
                    "dialect": {"preset": "generic", "reasoning_field": "reasoning"},
                },
                "fakeopenai": {
                    "kind": "chat_completions",
                    "base_url": upstream_url,
                    "api_key": UPSTREAM_KEY,
                    "dialect": {"preset": "openai"},
                },
                "anthropic": {
                    "kind": "anthropic",
                    "base_url": anthropic_url,
                    "api_key": UPSTREAM_KEY,
                    "timeouts": {"read": 1.5},
                    "dialect": {"default_max_tokens": 1024},
                },
                "gemini": {
                    "kind": "gemini",
                    "base_url": gemini_url,
                    "api_key": UPSTREAM_KEY,
                    "timeouts": {"read": 1.5},
                },
                "gemini-fetch": {
                    "kind": "gemini",
                    "base_url": gemini_url,
                    "api_key": UPSTREAM_KEY,
                    "fetch_media_urls": True,
                    "max_media_bytes": 1000,
                },
                "down": {"kind": "chat_completions", "base_url": "http://127.0.0.1:9/v1"},
            },
            "models": {
                **{f"m-{name}": {"provider": "fake", "model": f"fake-{name}"} for name in scenarios},
                "m-defaults": {
                    "provider": "fake",
                    "model": "fake-echo",
                    "defaults": {"max_output_tokens": 100, "temperature": 0.3},
                },
            },
        },
        {},
    )


@pytest.fixture(scope="session")
def gateway(
    fake_upstream: tuple[FakeChat, str],
    fake_anthropic_upstream: tuple[FakeAnthropic, str],
    fake_gemini_upstream: tuple[FakeGemini, str],
) -> Iterator[str]:
    """Base URL of the gateway (without `/v1`)."""
    settings = gateway_settings(fake_upstream[1], fake_anthropic_upstream[1], fake_gemini_upstream[1])
    with serve(create_app(settings)) as base_url:
        yield base_url
