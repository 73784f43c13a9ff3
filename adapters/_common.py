"""Helpers shared by two or more adapters: option parsing, data URLs, vendor error bodies."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson

from gateway.errors import UnsupportedParameter, VendorProtocolError
from schemas import canonical as c

JSON = Any
T = TypeVar("T")


def parse_options(cls: type[T], options: Mapping[str, JSON], base: T | None = None) -> T:
    """Config `dialect:` mapping → an adapter's frozen options dataclass; unknown keys raise `ValueError`."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown flag(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    start = base if base is not None else cls()
    return dataclasses.replace(start, **options)  # type: ignore[type-var]


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<media type>;base64,<data>` → (media type, base64 data); None for anything else."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        return None
    return media_type, data


def error_object(body: bytes) -> dict[str, JSON]:
    """The inner error object of a vendor error body (`{"error": {...}}` or a flat object), else `{}`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    inner = data.get("error")
    return inner if isinstance(inner, dict) else data


def load_object(raw: bytes | str) -> dict[str, JSON]:
    """Vendor JSON that must be an object; anything else is a protocol error, never skipped."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VendorProtocolError(f"The upstream sent invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise VendorProtocolError("The upstream sent JSON that is not an object.")
    return data


class Turns:
    """Conversation turns for vendors that want strict alternation: same-role neighbours merge.

    `key` names the list a turn holds its pieces in (`content` for Anthropic, `parts` for Gemini).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.turns: list[dict[str, JSON]] = []

    def add(self, role: str, pieces: list[dict[str, JSON]]) -> None:
        if not pieces:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1][self.key].extend(pieces)
        else:
            self.turns.append({"role": role, self.key: pieces})


def system_text(item: c.Message, param: str, carrier: str) -> str:
    """A system/developer message as the plain text a vendor's system field takes (`carrier` names that
    field in the 400 for a part that is not text)."""
    texts = []
    for i, part in enumerate(item.content):
        if not isinstance(part, c.InputText):
            raise UnsupportedParameter(f"{carrier} carry text only.", param=f"{param}.content[{i}]")
        texts.append(part.text)
    return "\n".join(texts)
