"""The store contract, one record per response, scoped by team."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = Any

ACTIVE = ("queued", "in_progress")
"""The statuses of a background run still going: the only ones `append_events` publishes over."""


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
    """Background runs only, once finished: the stream's wire events, for `GET …?stream=true`. While a run
    goes, its events are published apart, one at a time (`ResponseStore.append_events`)."""
    history_length: int = field(default=0, compare=False)
    """How many leading `input_items` came from an earlier response's chain: those are indexed already
    (by the response that introduced them), so `put` indexes only the rest. A write-time hint, not part of
    the record: not persisted (a record read back says 0) and not compared."""

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


def new_items(record: StoredResponse) -> dict[str, dict[str, JSON]]:
    """The items `record` introduces, by id, in id order: its own input (not the chain's history) and its
    output. What `put` indexes for `get_item`; items without an id cannot be referenced and are skipped.
    Id order makes concurrent writers lock index rows in the same order."""
    items = [*record.input_items[record.history_length :], *(record.response.get("output") or [])]
    by_id = {item["id"]: item for item in items if isinstance(item.get("id"), str)}
    return dict(sorted(by_id.items()))


class ResponseStore(Protocol):
    async def put(self, record: StoredResponse, *, if_status_in: tuple[str, ...] | None = None) -> bool:
        """Insert or replace `record` and index its `new_items`; whether it wrote. Idempotent: background
        runs put the same record again as it progresses; each put restarts its retention period.

        `if_status_in`: write only over a live (unexpired) record of the same team and id whose
        `response["status"]` is one of these, checked and written in one atomic step against every other
        process's put and delete. A background runner's own puts use it (with the active statuses) so
        that a delete or cancel from another replica, landing between the runner's read and its write,
        is never undone. Without it the put is unconditional and returns True."""
        ...

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        """None when absent, expired or stored by another team (the caller cannot tell which)."""
        ...

    async def get_item(self, item_id: str, team: str) -> dict[str, JSON] | None:
        """An item (wire form, with its "id") of any live response of `team`, for `item_reference` inputs;
        None when absent, expired, deleted with its response, or another team's."""
        ...

    async def append_events(
        self, response_id: str, team: str, start: int, events: list[dict[str, JSON]]
    ) -> bool:
        """Publish a background run's next wire `events`, as positions `start`, `start + 1`, … of its
        stream, for `get_events` on any replica; whether it did. Only rows are added: what is published
        already is never rewritten, so a run's publications cost what they publish.

        Like `put(..., if_status_in=ACTIVE)` it writes only while the live response of that team and id
        is still running, checked and written in one atomic step against every other process's put and
        delete: False once it was cancelled, finished, deleted or has expired (or was never stored), and
        then nothing is added. Idempotent: positions published already keep what they hold, so a
        publication retried after a failure (same `start`) adds only what had not landed. `start` is at
        most the number of events published so far (else ValueError): a stream has no gaps. Published
        events live as long as their response: `delete` and `purge_expired` take them with it."""
        ...

    async def get_events(self, response_id: str, team: str, after: int) -> list[dict[str, JSON]]:
        """The published events at positions after `after` (-1: all), in order; [] when there are none, or
        the response is absent, expired, deleted or another team's."""
        ...

    async def delete(self, response_id: str, team: str) -> bool:
        """Whether a live response was deleted; the index entries it introduced and its published events
        go with it."""
        ...

    async def purge_expired(self) -> int:
        """Delete the responses (with their index entries and published events) whose retention has passed;
        how many responses.

        `get` already hides expired rows: this only reclaims space. Stores that expire entries
        themselves (Redis) return 0."""
        ...

    async def close(self) -> None: ...
