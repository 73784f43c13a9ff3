"""Guards on the layering: vendor knowledge lives in `adapters/` only."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
VENDORS = re.compile(
    r"anthropic|claude|gemini|google|llama|vllm|ollama|mistral|deepseek|groq|lightcone|tzafon|chat.?completions",
    re.IGNORECASE,
)


def test_gateway_and_schemas_never_name_a_vendor() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in ("gateway", "schemas")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if VENDORS.search(line)
    ]
    assert offenders == []


def test_adapters_do_no_io() -> None:
    """Adapters are pure translation: no sockets, HTTP clients, clocks or randomness."""
    forbidden = re.compile(r"^\s*(import|from)\s+(httpx|aiohttp|socket|asyncio|time|random|secrets|uuid)\b")
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted((ROOT / "adapters").rglob("*.py"))
        for line in path.read_text().splitlines()
        if forbidden.search(line)
    ]
    assert offenders == []
