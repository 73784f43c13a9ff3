"""The store contract, one record per response, scoped by team."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

JSON = Any


@dataclass(frozen=True)
class StoredResponse:
    """A finished response and the full input it answered (chain included), in wire form with ids.

    `input_items` are the items the model saw, `previous_response_id`'s history first, so a request that
    chains on this one only has to append `response["output"]` and its own input.
    """

    id: str
    team: str
    response: dict[str, JSON]
    input_items: list[dict[str, JSON]]
    lease_until: float | None = None
    """Background runs only: until when (epoch seconds) the replica running it vouches for it."""
    events: list[dict[str, JSON]] | None = None
    """Background runs only, once finished: the stream's wire events, for `GET …?stream=true`."""

    def body(self) -> dict[str, JSON]:
        """What a store persists (everything but the key)."""
        return {
            "response": self.response,
            "input_items": self.input_items,
            "lease_until": self.lease_until,
            "events": self.events,
        }

    @classmethod
    def from_body(cls, response_id: str, team: str, body: dict[str, JSON]) -> StoredResponse:
        return cls(
            response_id,
            team,
            body["response"],
            body["input_items"],
            body.get("lease_until"),
            body.get("events"),
        )


class ResponseStore(Protocol):
    async def put(self, record: StoredResponse) -> None: ...

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        """None when absent or stored by another team (the caller cannot tell which)."""
        ...

    async def delete(self, response_id: str, team: str) -> bool: ...

    async def close(self) -> None: ...
