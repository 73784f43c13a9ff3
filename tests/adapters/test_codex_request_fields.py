"""Request fields the Codex CLI sends on every turn, which must not be 400s on non-OpenAI upstreams.

`client_metadata` (Codex's session/thread/turn tags) is accepted and goes nowhere; `prompt_cache_key` (its
session id, a cache-routing hint) is carried by OpenAI-dialect Chat upstreams, and dropped (reported in
`x-rosetta-dropped-params`) by the others, Anthropic and Gemini. The end-to-end run is
tests/client/test_codex.py.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.anthropic import AnthropicAdapter
from adapters.anthropic.options import AnthropicOptions
from adapters.base import Adapter, UpstreamTarget
from adapters.gemini import build_gemini
from adapters.openai_chat import PRESETS, ChatCompletionsAdapter
from tests.helpers import canonical

CODEX_FIELDS: dict[str, Any] = {
    "input": "hi",
    "prompt_cache_key": "01a20196-2f08-75f3-aa54-8d9dd35cc8e2",
    "client_metadata": {"session_id": "01a20196-2f08-75f3-aa54-8d9dd35cc8e2", "turn_id": "t-1"},
}
ANTHROPIC = (
    AnthropicAdapter(AnthropicOptions()),
    UpstreamTarget("https://anthropic.test/v1", "claude-t", "k"),
)
GEMINI = (build_gemini({}), UpstreamTarget("https://gemini.test/v1beta", "gemini-t", "k"))
LLAMA_CPP = (ChatCompletionsAdapter(PRESETS["llama.cpp"]), UpstreamTarget("http://llama.test/v1", "m", None))


@pytest.mark.parametrize(
    ("adapter", "target"), [ANTHROPIC, GEMINI, LLAMA_CPP], ids=["anthropic", "gemini", "llama.cpp"]
)
def test_codex_fields_are_carried_or_dropped_and_reported(adapter: Adapter, target: UpstreamTarget) -> None:
    vendor = adapter.build_request(canonical(CODEX_FIELDS), target)
    assert vendor.dropped == ("prompt_cache_key",)
    body = orjson.loads(vendor.body)
    assert "prompt_cache_key" not in body and "client_metadata" not in orjson.dumps(body).decode()


def test_openai_chat_upstreams_carry_the_cache_key() -> None:
    adapter = ChatCompletionsAdapter(PRESETS["openai"])
    vendor = adapter.build_request(
        canonical(CODEX_FIELDS), UpstreamTarget("https://api.test/v1", "gpt-t", "k")
    )
    assert vendor.dropped == ()
    assert orjson.loads(vendor.body)["prompt_cache_key"] == CODEX_FIELDS["prompt_cache_key"]
