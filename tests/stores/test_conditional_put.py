"""`put(..., if_status_in=...)`, the background runner's write: it lands only over a live response of the
same team whose status is still one of those given, checked and written in one step, so a delete or cancel
from another replica is never undone by the runner's next progress or final put."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis

from gateway.store.base import ResponseStore, StoredResponse
from gateway.store.redis import response_key
from tests.stores.support import REDIS_URL, TTL, Backend, chained, item

ACTIVE = ("queued", "in_progress")
ROUNDS = 50


def running(team: str = "a") -> tuple[StoredResponse, dict[str, Any]]:
    """A background response in progress (one input item, no output yet), and the item it asked."""
    asked = item()
    stored = chained([], [asked], [], team=team)
    return with_status(stored, "in_progress"), asked


def with_status(
    stored: StoredResponse, status: str, output: list[dict[str, Any]] | None = None
) -> StoredResponse:
    response = {**stored.response, "status": status}
    if output is not None:
        response["output"] = output
    return replace(stored, response=response)


async def test_it_writes_over_an_active_response(backend: Backend) -> None:
    stored, _ = running()
    assert await backend.store.put(stored) is True
    said = item("partial", role="assistant")
    progressed = with_status(stored, "in_progress", [said])
    assert await backend.store.put(progressed, if_status_in=ACTIVE) is True
    assert await backend.store.get(stored.id, "a") == progressed
    assert await backend.store.get_item(said["id"], "a") == said
    finished = with_status(stored, "completed", [said])
    assert await backend.store.put(finished, if_status_in=ACTIVE) is True
    assert await backend.store.get(stored.id, "a") == finished
    assert await backend.store.put(progressed, if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "a") == finished
    await backend.store.delete(stored.id, "a")


async def test_it_leaves_a_cancelled_response_alone(backend: Backend) -> None:
    stored, asked = running()
    cancelled = with_status(stored, "cancelled")
    await backend.store.put(cancelled)
    said = item("too late", role="assistant")
    assert await backend.store.put(with_status(stored, "completed", [said]), if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "a") == cancelled
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.get_item(said["id"], "a") is None
    await backend.store.delete(stored.id, "a")


async def test_it_does_not_resurrect_a_deleted_response(backend: Backend) -> None:
    stored, asked = running()
    await backend.store.put(stored)
    assert await backend.store.delete(stored.id, "a") is True
    said = item("too late", role="assistant")
    assert await backend.store.put(with_status(stored, "completed", [said]), if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "a") is None
    assert await backend.store.get_item(asked["id"], "a") is None
    assert await backend.store.get_item(said["id"], "a") is None


async def test_it_does_not_create_an_absent_response(backend: Backend) -> None:
    stored, asked = running()
    assert await backend.store.put(stored, if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "a") is None
    assert await backend.store.get_item(asked["id"], "a") is None


async def test_it_does_not_write_over_another_teams_response(backend: Backend) -> None:
    stored, asked = running()
    await backend.store.put(stored)
    theirs = replace(with_status(stored, "completed", [item(role="assistant")]), team="b")
    assert await backend.store.put(theirs, if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "b") is None
    assert await backend.store.get_item(asked["id"], "b") is None
    assert await backend.store.get(stored.id, "a") == stored
    await backend.store.delete(stored.id, "a")


async def test_it_does_not_revive_an_expired_response(backend: Backend) -> None:
    """SQLite and PostgreSQL keep an expired row until purged: turning their clock back shows it untouched.
    Redis drops the key itself (here only the response's, to see that the item index is untouched too)."""
    stored, asked = running()
    await backend.store.put(stored)
    if backend.kind == "redis":
        async with Redis.from_url(REDIS_URL) as redis:
            await redis.pexpire(response_key("a", stored.id), 1)
        await asyncio.sleep(0.05)
    else:
        backend.clock.advance(TTL)
    said = item("too late", role="assistant")
    assert await backend.store.put(with_status(stored, "completed", [said]), if_status_in=ACTIVE) is False
    assert await backend.store.get(stored.id, "a") is None
    backend.clock.advance(-TTL)
    assert await backend.store.get(stored.id, "a") == (None if backend.kind == "redis" else stored)
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.get_item(said["id"], "a") is None
    await backend.store.delete(stored.id, "a")


async def test_an_unconditional_put_still_writes_anything_and_says_so(backend: Backend) -> None:
    stored, _ = running()
    assert await backend.store.put(with_status(stored, "cancelled")) is True
    assert await backend.store.put(stored) is True
    assert await backend.store.get(stored.id, "a") == stored
    await backend.store.delete(stored.id, "a")


async def test_a_delete_racing_the_runners_put_always_wins(replicas: tuple[ResponseStore, ...]) -> None:
    """Whichever lands first, the response ends deleted with every item it indexed (including the output
    the runner's put adds): a put first is then deleted, a put after the delete does not write."""
    runner, other = replicas
    for round in range(ROUNDS):
        stored, asked = running()
        await runner.put(stored)
        said = item("racing", role="assistant")
        put = runner.put(with_status(stored, "in_progress", [said]), if_status_in=ACTIVE)
        delete = other.delete(stored.id, "a")
        if round % 2:
            deleted, _ = await asyncio.gather(delete, put)
        else:
            _, deleted = await asyncio.gather(put, delete)
        assert deleted is True
        assert await runner.get(stored.id, "a") is None
        assert await other.get(stored.id, "a") is None
        assert await runner.get_item(asked["id"], "a") is None
        assert await runner.get_item(said["id"], "a") is None


async def test_a_cancel_racing_the_runners_put_always_wins(replicas: tuple[ResponseStore, ...]) -> None:
    runner, other = replicas
    for round in range(ROUNDS):
        stored, _ = running()
        await runner.put(stored)
        cancelled = with_status(stored, "cancelled")
        put = runner.put(with_status(stored, "completed", [item(role="assistant")]), if_status_in=ACTIVE)
        cancel = other.put(cancelled)
        if round % 2:
            await asyncio.gather(cancel, put)
        else:
            await asyncio.gather(put, cancel)
        assert await other.get(stored.id, "a") == cancelled
        await other.delete(stored.id, "a")
