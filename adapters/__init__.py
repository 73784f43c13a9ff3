"""The adapter registry: provider `kind` → a factory taking that provider's dialect options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapters.anthropic import build_anthropic
from adapters.base import Adapter
from adapters.gemini import build_gemini
from adapters.openai_chat import ChatCompletionsAdapter, parse_dialect

ADAPTERS: dict[str, Callable[[Mapping[str, Any]], Adapter]] = {
    "chat_completions": lambda options: ChatCompletionsAdapter(parse_dialect(options)),
    "anthropic": build_anthropic,
    "gemini": build_gemini,
}


def build_adapter(kind: str, options: Mapping[str, Any]) -> Adapter:
    """Raises `ValueError` for an unknown kind or bad options (config loading reports it with its path)."""
    if kind not in ADAPTERS:
        raise ValueError(f"unknown provider kind {kind!r}")
    return ADAPTERS[kind](options)
