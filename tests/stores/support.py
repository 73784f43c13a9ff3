"""What the store tests share: the services' URLs, records to store, and a clock that moves on demand."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.store.base import ResponseStore, StoredResponse
from tests.helpers import reachable

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://127.0.0.1:5432/test"

TTL = 300
BASE_TIME = 1_000_000_000.0
"""Where test clocks start (2001): rows stored at this time are long expired for real-time stores, and
real-time rows (other tests') are live for a purge at this time, so a purge's count is this test's own."""


def need(kind: str) -> None:
    """Skip, saying why, when the service a test runs against is not on 127.0.0.1."""
    if kind == "redis" and not reachable(6379):
        pytest.skip("no Redis on 127.0.0.1:6379")
    if kind == "postgres" and not reachable(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")


def record(team: str = "a") -> StoredResponse:
    response_id = f"resp_{uuid.uuid4().hex}"
    return StoredResponse(
        id=response_id,
        team=team,
        response={
            "id": response_id,
            "object": "response",
            "output": [{"type": "message", "content": ["é\u2028"]}],
        },
        input_items=[
            {
                "id": "msg_1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            }
        ],
    )


def item(text: str = "hi", role: str = "user") -> dict[str, Any]:
    """A message item with a fresh id (ids are global per team: fixed ones would collide across runs)."""
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": role,
        "content": [{"type": "input_text" if role == "user" else "output_text", "text": text}],
    }


def chained(
    history: list[dict[str, Any]],
    own: list[dict[str, Any]],
    output: list[dict[str, Any]],
    team: str = "a",
) -> StoredResponse:
    """A response that saw `history` (an earlier chain's items), then its `own` input, and said `output`."""
    response_id = f"resp_{uuid.uuid4().hex}"
    return StoredResponse(
        id=response_id,
        team=team,
        response={"id": response_id, "object": "response", "status": "completed", "output": output},
        input_items=[*history, *own],
        history_length=len(history),
    )


class Clock:
    """Epoch seconds that move only when a test says so (retention is tested without waiting)."""

    def __init__(self, now: float = BASE_TIME) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    kind: str
    store: ResponseStore
    clock: Clock
    """Only SQLite and PostgreSQL read it; Redis expires keys by its own clock."""
