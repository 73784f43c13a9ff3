"""`append_events` / `get_events`, how a background run publishes its stream while it runs: appended in
order and never rewritten, only while the response is live and running (checked and written in one step,
like the runner's conditional put), read back only while it is live, and gone with it (delete, expiry,
purge), on every backend."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.store.base import ResponseStore, StoredResponse
from gateway.store.redis import events_key, response_key
from tests.stores.support import BASE_TIME, REDIS_URL, TTL, Backend
from tests.stores.support import record as new_record

ROUNDS = 50


def running(status: str = "in_progress", team: str = "a") -> StoredResponse:
    stored = new_record(team)
    return replace(stored, response={**stored.response, "status": status, "background": True})


def events(start: int, count: int, text: str = "é\u2028") -> list[dict[str, Any]]:
    """Wire events at positions `start`, `start + 1`, …"""
    return [
        {"type": "response.output_text.delta", "sequence_number": n, "delta": f"{text}{n}"}
        for n in range(start, start + count)
    ]


async def test_events_are_appended_in_order_and_read_after_a_position(backend: Backend) -> None:
    store = backend.store
    stored = running("queued")
    await store.put(stored)
    assert await store.get_events(stored.id, "a", -1) == []
    assert await store.append_events(stored.id, "a", 0, events(0, 2)) is True
    assert await store.append_events(stored.id, "a", 2, events(2, 1)) is True
    await store.put(running_as(stored, "in_progress"), if_status_in=("queued",))
    assert await store.append_events(stored.id, "a", 3, events(3, 3)) is True
    assert await store.append_events(stored.id, "a", 6, []) is True
    assert await store.get_events(stored.id, "a", -1) == events(0, 6)
    assert await store.get_events(stored.id, "a", 0) == events(1, 5)
    assert await store.get_events(stored.id, "a", 4) == events(5, 1)
    assert await store.get_events(stored.id, "a", 5) == []
    assert await store.get_events(stored.id, "a", 99) == []
    assert await store.get_events(stored.id, "a", -7) == events(0, 6)
    assert (await store.get(stored.id, "a")) == running_as(stored, "in_progress")  # the record untouched
    await store.delete(stored.id, "a")


def running_as(stored: StoredResponse, status: str) -> StoredResponse:
    return replace(stored, response={**stored.response, "status": status})


async def test_publishing_again_what_is_published_adds_nothing(backend: Backend) -> None:
    """A runner whose append failed on the way back (stored, but the answer lost) sends it again."""
    store = backend.store
    stored = running()
    await store.put(stored)
    assert await store.append_events(stored.id, "a", 0, events(0, 3)) is True
    assert await store.append_events(stored.id, "a", 0, events(0, 3)) is True
    assert await store.get_events(stored.id, "a", -1) == events(0, 3)
    assert await store.append_events(stored.id, "a", 1, events(1, 4)) is True  # two again, two new
    assert await store.append_events(stored.id, "a", 0, events(0, 2, text="other")) is True
    assert await store.get_events(stored.id, "a", -1) == events(0, 5)
    await store.delete(stored.id, "a")


async def test_a_gap_is_refused_and_nothing_is_added(backend: Backend) -> None:
    store = backend.store
    stored = running()
    await store.put(stored)
    with pytest.raises(ValueError):
        await store.append_events(stored.id, "a", 1, events(1, 2))
    assert await store.append_events(stored.id, "a", 0, events(0, 2)) is True
    with pytest.raises(ValueError):
        await store.append_events(stored.id, "a", 3, events(3, 1))
    with pytest.raises(ValueError):
        await store.append_events(stored.id, "a", -1, events(0, 1))
    assert await store.get_events(stored.id, "a", -1) == events(0, 2)
    await store.delete(stored.id, "a")


@pytest.mark.parametrize("status", ["completed", "failed", "incomplete", "cancelled"])
async def test_only_a_running_response_takes_events(backend: Backend, status: str) -> None:
    """Once it has ended (or was cancelled through any replica) nothing more is published: the runner,
    told so, stops."""
    store = backend.store
    stored = running()
    await store.put(stored)
    assert await store.append_events(stored.id, "a", 0, events(0, 2)) is True
    ended = running_as(stored, status)
    assert await store.put(ended, if_status_in=("in_progress",)) is True
    assert await store.append_events(stored.id, "a", 2, events(2, 2)) is False
    assert await store.get_events(stored.id, "a", -1) == events(0, 2)
    assert await store.get(stored.id, "a") == ended
    await store.delete(stored.id, "a")


async def test_nothing_is_published_for_an_absent_response(backend: Backend) -> None:
    stored = running()
    assert await backend.store.append_events(stored.id, "a", 0, events(0, 2)) is False
    assert await backend.store.get_events(stored.id, "a", -1) == []
    assert await backend.store.get(stored.id, "a") is None


async def test_another_team_neither_publishes_nor_reads(backend: Backend) -> None:
    store = backend.store
    stored = running()
    await store.put(stored)
    assert await store.append_events(stored.id, "a", 0, events(0, 2)) is True
    assert await store.get_events(stored.id, "b", -1) == []
    assert await store.append_events(stored.id, "b", 0, events(0, 3, text="theirs")) is False
    assert await store.append_events(stored.id, "b", 2, events(2, 1, text="theirs")) is False
    assert await store.get_events(stored.id, "a", -1) == events(0, 2)
    await store.delete(stored.id, "a")


async def test_events_are_deleted_with_their_response(backend: Backend) -> None:
    """Deleted, not hidden: the same response stored again has none."""
    store = backend.store
    stored = running()
    await store.put(stored)
    assert await store.append_events(stored.id, "a", 0, events(0, 3)) is True
    assert await store.delete(stored.id, "a") is True
    assert await store.get_events(stored.id, "a", -1) == []
    assert await store.append_events(stored.id, "a", 3, events(3, 1)) is False
    await store.put(stored)
    assert await store.get_events(stored.id, "a", -1) == []
    assert await store.append_events(stored.id, "a", 0, events(0, 1)) is True
    assert await store.get_events(stored.id, "a", -1) == events(0, 1)
    await store.delete(stored.id, "a")


async def test_events_expire_with_their_response(backend: Backend) -> None:
    """SQLite and PostgreSQL read them only while their response is live (by the store's clock); Redis
    gives the list the response key's expiry, and each put of the response carries it on."""
    store = backend.store
    stored = running()
    await store.put(stored)
    assert await store.append_events(stored.id, "a", 0, events(0, 2)) is True
    if backend.kind == "redis":
        async with Redis.from_url(REDIS_URL) as redis:
            first = await redis.pexpiretime(response_key("a", stored.id))
            assert await redis.pexpiretime(events_key("a", stored.id)) == first
            await asyncio.sleep(0.01)
            await store.put(stored, if_status_in=("in_progress",))  # a lease renewal carries them on
            renewed = await redis.pexpiretime(response_key("a", stored.id))
            assert renewed > first
            assert await redis.pexpiretime(events_key("a", stored.id)) == renewed
            await redis.pexpire(response_key("a", stored.id), 1)
            await redis.pexpire(events_key("a", stored.id), 1)
        await asyncio.sleep(0.05)
    else:
        backend.clock.advance(TTL - 1)
        await store.put(stored, if_status_in=("in_progress",))  # a lease renewal keeps them too
        backend.clock.advance(TTL - 1)
        assert await store.get_events(stored.id, "a", -1) == events(0, 2)
        backend.clock.advance(1)
    assert await store.get_events(stored.id, "a", -1) == []
    assert await store.append_events(stored.id, "a", 2, events(2, 1)) is False
    await store.delete(stored.id, "a")


async def test_purge_takes_the_events_of_expired_responses(timed: Backend) -> None:
    store, clock = timed.store, timed.clock
    clock.now = BASE_TIME + 1_000_000
    await store.purge_expired()  # what earlier runs at the test clock's time left behind
    clock.now = BASE_TIME
    old, recent = running(), running()
    await store.put(old)
    assert await store.append_events(old.id, "a", 0, events(0, 2)) is True
    clock.advance(TTL / 2)
    await store.put(recent)
    assert await store.append_events(recent.id, "a", 0, events(0, 3)) is True
    clock.advance(TTL / 2)
    assert await store.purge_expired() == 1
    clock.now = BASE_TIME
    await store.put(old)  # the same response stored again: had its events been left behind, they would show
    assert await store.get_events(old.id, "a", -1) == []
    assert await store.get_events(recent.id, "a", -1) == events(0, 3)
    await store.delete(old.id, "a")
    await store.delete(recent.id, "a")


async def test_a_delete_racing_an_append_always_wins(replicas: tuple[ResponseStore, ...]) -> None:
    """Whichever lands first, no event outlives the response: an append first is deleted with it, one
    after the delete does not write."""
    runner, other = replicas
    for round in range(ROUNDS):
        stored = running()
        await runner.put(stored)
        await runner.append_events(stored.id, "a", 0, events(0, 1))
        append = runner.append_events(stored.id, "a", 1, events(1, 2))
        delete = other.delete(stored.id, "a")
        if round % 2:
            deleted, _ = await asyncio.gather(delete, append)
        else:
            _, deleted = await asyncio.gather(append, delete)
        assert deleted is True
        await other.put(stored)
        assert await runner.get_events(stored.id, "a", -1) == []
        await other.delete(stored.id, "a")


async def test_a_cancel_racing_an_append_stops_it(replicas: tuple[ResponseStore, ...]) -> None:
    """An append after the cancel does not write; one before it stays (the stream as far as it went)."""
    runner, other = replicas
    for round in range(ROUNDS):
        stored = running()
        await runner.put(stored)
        append = runner.append_events(stored.id, "a", 0, events(0, 2))
        cancel = other.put(running_as(stored, "cancelled"), if_status_in=("queued", "in_progress"))
        if round % 2:
            cancelled, appended = await asyncio.gather(cancel, append)
        else:
            appended, cancelled = await asyncio.gather(append, cancel)
        assert cancelled is True
        assert await other.get_events(stored.id, "a", -1) == (events(0, 2) if appended else [])
        published = 2 if appended else 0
        assert await runner.append_events(stored.id, "a", published, events(published, 1)) is False
        await other.delete(stored.id, "a")
