"""Per-provider settings of the Gemini adapter (config `dialect:`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters._common import parse_options

DEFAULT_BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 32768,
}
DEFAULT_LEVELS = {
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}


@dataclass(frozen=True)
class GeminiOptions:
    thinking: Literal["budget", "level"] = "budget"
    """How `reasoning.effort` is sent: `thinkingBudget` tokens (Gemini 2.5) or `thinkingLevel` (Gemini 3)."""
    effort_budgets: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    effort_levels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    json_schema_parameters: bool = False
    """Send tool schemas whole as `parametersJsonSchema` instead of narrowing them to `parameters`."""
    signature_sentinel: bool = True
    """Replayed calls with no signature of ours (other vendors' history) get Google's documented
    `skip_thought_signature_validator`, which Gemini 3 needs to accept them."""


def parse_gemini_options(options: Mapping[str, Any]) -> GeminiOptions:
    values = dict(options)
    for name, defaults in (("effort_budgets", DEFAULT_BUDGETS), ("effort_levels", DEFAULT_LEVELS)):
        if name in values:
            unknown = set(values[name]) - set(defaults)
            if unknown:
                raise ValueError(f"{name}: unknown effort(s) {', '.join(sorted(unknown))}")
            values[name] = {**defaults, **values[name]}
    return parse_options(GeminiOptions, values)
