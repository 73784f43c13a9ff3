"""One contract for every response store: SQLite (embedded) and the shared Redis and PostgreSQL stores,
over real connections to the services on 127.0.0.1 (skipped, with the reason, only when one is absent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.base import ResponseStore, StoredResponse
from gateway.store.postgres import PostgresStore
from gateway.store.redis import RedisStore
from gateway.store.sqlite import SQLiteStore
from tests.helpers import reachable
from tests.stores.support import POSTGRES_URL, REDIS_URL, record


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ResponseStore]:
    kind: ResponseStore
    if request.param == "sqlite":
        kind = SQLiteStore()
    elif request.param == "redis":
        if not reachable(6379):
            pytest.skip("no Redis on 127.0.0.1:6379")
        kind = RedisStore(REDIS_URL, ttl_seconds=300)
    else:
        if not reachable(5432):
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        kind = PostgresStore(POSTGRES_URL)
    yield kind
    await kind.close()


async def test_round_trip_is_exact(store: ResponseStore) -> None:
    stored = record()
    await store.put(stored)
    assert await store.get(stored.id, "a") == stored


async def test_teams_are_isolated(store: ResponseStore) -> None:
    stored = record()
    await store.put(stored)
    assert await store.get(stored.id, "b") is None
    assert await store.delete(stored.id, "b") is False
    assert await store.get(stored.id, "a") == stored


async def test_delete(store: ResponseStore) -> None:
    stored = record()
    await store.put(stored)
    assert await store.delete(stored.id, "a") is True
    assert await store.get(stored.id, "a") is None
    assert await store.delete(stored.id, "a") is False


async def test_put_replaces(store: ResponseStore) -> None:
    stored = record()
    await store.put(stored)
    updated = StoredResponse(stored.id, "a", {**stored.response, "status": "completed"}, stored.input_items)
    await store.put(updated)
    assert await store.get(stored.id, "a") == updated


async def test_a_file_store_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "responses.sqlite3")
    stored = record()
    first = SQLiteStore(path)
    await first.put(stored)
    await first.close()
    second = SQLiteStore(path)
    assert await second.get(stored.id, "a") == stored
    await second.close()


async def test_two_replicas_share_one_postgres_store() -> None:
    if not reachable(5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    one, two = PostgresStore(POSTGRES_URL), PostgresStore(POSTGRES_URL)
    stored = record()
    await one.put(stored)
    assert await two.get(stored.id, "a") == stored
    await one.close()
    await two.close()
