"""Per-provider settings of the Anthropic adapter (config `dialect:`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters._common import parse_options

DEFAULT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32000, "max": 64000}


@dataclass(frozen=True)
class AnthropicOptions:
    version: str = "2023-06-01"
    """`anthropic-version`, pinned: `2026-10-21` removed `temperature`/`top_p`, so those are refused."""
    default_max_tokens: int = 4096
    """`max_tokens` is required by Anthropic; used when neither the client nor the model config sets one."""
    effort_budgets: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    """`reasoning.effort` → `thinking.budget_tokens`."""
    structured_outputs: bool = False
    """Native `output_config.format` and tool `strict`; otherwise a forced tool carries the JSON."""
    beta: tuple[str, ...] = ()
    """`anthropic-beta` flags to send."""

    @property
    def sampling_allowed(self) -> bool:
        return self.version == "2023-06-01"


def parse_anthropic_options(options: Mapping[str, Any]) -> AnthropicOptions:
    values = dict(options)
    if "beta" in values:
        values["beta"] = tuple(values["beta"])
    if "effort_budgets" in values:
        unknown = set(values["effort_budgets"]) - set(DEFAULT_BUDGETS)
        if unknown:
            raise ValueError(f"effort_budgets: unknown effort(s) {', '.join(sorted(unknown))}")
        values["effort_budgets"] = {**DEFAULT_BUDGETS, **values["effort_budgets"]}
    return parse_options(AnthropicOptions, values)
