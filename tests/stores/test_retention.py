"""Retention (`store.ttl_seconds`): SQLite and PostgreSQL hide a response once its time is up and purge it
on demand, by a clock the tests move; Redis leaves expiry to its keys; the gateway purges while it runs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis

from config.models import Settings, Store
from gateway.app import create_app
from gateway.store import open_store, purge_periodically
from gateway.store.base import ResponseStore
from gateway.store.postgres import PostgresStore
from gateway.store.redis import RedisStore, response_key
from gateway.store.sqlite import SQLiteStore
from tests.stores.support import BASE_TIME, POSTGRES_URL, REDIS_URL, TTL, Backend, Clock, chained, item, need
from tests.stores.support import record as new_record


async def test_a_response_is_kept_for_ttl_seconds_and_no_longer(timed: Backend) -> None:
    stored = new_record()
    await timed.store.put(stored)
    timed.clock.advance(TTL - 1)
    assert await timed.store.get(stored.id, "a") == stored
    timed.clock.advance(1)
    assert await timed.store.get(stored.id, "a") is None
    assert await timed.store.delete(stored.id, "a") is False


async def test_each_put_restarts_retention(timed: Backend) -> None:
    """A background run is put again as it progresses: it is kept `TTL` seconds after its last put."""
    stored = new_record()
    await timed.store.put(stored)
    timed.clock.advance(TTL - 1)
    await timed.store.put(stored)
    timed.clock.advance(TTL - 1)
    assert await timed.store.get(stored.id, "a") == stored
    timed.clock.advance(1)
    assert await timed.store.get(stored.id, "a") is None


async def test_purge_deletes_expired_responses_and_counts_them(timed: Backend) -> None:
    timed.clock.now = BASE_TIME + 1_000_000
    await timed.store.purge_expired()  # what earlier runs at the test clock's time left behind
    timed.clock.now = BASE_TIME
    said = item("bye", role="assistant")
    old, older = chained([], [item()], [said]), new_record()
    await timed.store.put(old)
    await timed.store.put(older)
    timed.clock.advance(TTL / 2)
    recent = new_record()
    await timed.store.put(recent)
    timed.clock.advance(TTL / 2)
    assert await timed.store.purge_expired() == 2
    assert await timed.store.purge_expired() == 0
    assert await timed.store.get(recent.id, "a") == recent
    timed.clock.now = BASE_TIME  # were they still there, they would be live again at this time
    assert await timed.store.get(old.id, "a") is None
    assert await timed.store.get(older.id, "a") is None
    assert await timed.store.get_item(said["id"], "a") is None
    assert await timed.store.get(recent.id, "a") == recent
    timed.clock.now = BASE_TIME + TTL * 1.5
    assert await timed.store.purge_expired() == 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_without_a_ttl_nothing_expires(kind: str) -> None:
    need(kind)
    clock = Clock()
    store: ResponseStore = (
        SQLiteStore(clock=clock) if kind == "sqlite" else PostgresStore(POSTGRES_URL, clock=clock)
    )
    asked = item()
    stored = chained([], [asked], [])
    await store.put(stored)
    clock.advance(10 * 365 * 86400)
    await store.purge_expired()
    assert await store.get(stored.id, "a") == stored
    assert await store.get_item(asked["id"], "a") == asked
    assert await store.delete(stored.id, "a") is True
    await store.close()


async def test_redis_leaves_expiry_to_its_keys() -> None:
    need("redis")
    store = RedisStore(REDIS_URL, ttl_seconds=TTL)
    stored = new_record()
    await store.put(stored)
    assert await store.purge_expired() == 0
    assert await store.get(stored.id, "a") == stored
    await store.delete(stored.id, "a")
    await store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
async def test_open_store_gives_every_backend_its_ttl(kind: str, tmp_path: Path) -> None:
    need(kind)
    path = str(tmp_path / "responses.sqlite3")
    url = {"sqlite": None, "redis": REDIS_URL, "postgres": POSTGRES_URL}[kind]
    store = open_store(Store.model_validate({"kind": kind, "path": path, "url": url, "ttl_seconds": 60}))
    stored = new_record()
    before = time.time()
    await store.put(stored)
    after = time.time()
    expires_at = await _expiry(kind, path, stored.id)
    await store.delete(stored.id, "a")
    await store.close()
    rounding = 0.001  # Redis keeps milliseconds (PostgreSQL microseconds)
    assert before + 60 - rounding <= expires_at <= after + 60 + rounding


async def _expiry(kind: str, path: str, response_id: str) -> float:
    """When the backend will expire a response, in epoch seconds, read beside the store."""
    if kind == "sqlite":
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT expires_at FROM responses WHERE id = ?", (response_id,)).fetchone()
        return float(row[0])
    if kind == "redis":
        redis = Redis.from_url(REDIS_URL)
        milliseconds = await redis.pexpiretime(response_key("a", response_id))
        await redis.aclose()
        return float(milliseconds) / 1000
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM expires_at) FROM rosetta_responses WHERE id = %s", (response_id,)
        )
        found = await cursor.fetchone()
    assert found is not None
    return float(found[0])


class ReportingStore(SQLiteStore):
    """A SQLite store whose first `failures` purges fail (with a secret in the message) and which says
    when it has purged `goal` times, and whether the purge loop was still running when it was closed."""

    def __init__(self, failures: int = 0, goal: int = 1) -> None:
        super().__init__()
        self.failures, self.goal, self.purges = failures, goal, 0
        self.reached = asyncio.Event()
        self.loops_at_close: int | None = None

    async def purge_expired(self) -> int:
        self.purges += 1
        if self.purges == self.goal:
            self.reached.set()
        if self.purges <= self.failures:
            raise ConnectionError("postgresql://rosetta:s3cret@db:5432/rosetta refused the connection")
        return await super().purge_expired()

    async def close(self) -> None:
        self.loops_at_close = len(_purge_loops())
        await super().close()


def _purge_loops() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_coro().__name__ == "purge_periodically"]  # type: ignore[union-attr]


async def test_the_purge_loop_survives_failures_and_keeps_secrets(caplog: pytest.LogCaptureFixture) -> None:
    store = ReportingStore(failures=2, goal=3)
    with caplog.at_level(logging.WARNING, logger="gateway.store"):
        loop = asyncio.create_task(purge_periodically(store, interval=0))
        async with asyncio.timeout(10):
            await store.reached.wait()
        loop.cancel()
        await asyncio.wait([loop])
    assert loop.cancelled()
    assert [entry.getMessage() for entry in caplog.records] == [
        "purging expired responses failed: ConnectionError"
    ] * 2
    assert "s3cret" not in caplog.text
    await store.close()


async def test_the_gateway_purges_from_startup_until_shutdown() -> None:
    """The lifespan starts the loop (its first purge is immediate) and stops it before closing the store."""
    app = create_app(Settings())
    store = ReportingStore()
    app.state.gateway.store = store
    async with app.router.lifespan_context(app):
        async with asyncio.timeout(10):
            await store.reached.wait()
        assert len(_purge_loops()) == 1
    assert store.loops_at_close == 0
    assert _purge_loops() == []
