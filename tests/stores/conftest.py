"""Stores with retention (`TTL`) over every backend, and a PostgreSQL database without Rosetta's tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from gateway.store.base import ResponseStore
from gateway.store.postgres import PostgresStore
from gateway.store.redis import RedisStore
from gateway.store.sqlite import SQLiteStore
from tests.stores.support import POSTGRES_URL, REDIS_URL, TTL, Backend, Clock, need

ROSETTA_TABLES = ("rosetta_events", "rosetta_items", "rosetta_responses", "rosetta_schema_version")


async def _backend(kind: str) -> Backend:
    need(kind)
    clock = Clock()
    if kind == "sqlite":
        return Backend(kind, SQLiteStore(ttl_seconds=TTL, clock=clock), clock)
    if kind == "redis":
        return Backend(kind, RedisStore(REDIS_URL, ttl_seconds=TTL), clock)
    return Backend(kind, PostgresStore(POSTGRES_URL, ttl_seconds=TTL, clock=clock), clock)


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Every backend, keeping responses for `TTL` seconds."""
    opened = await _backend(request.param)
    yield opened
    await opened.store.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def timed(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """The backends that expire rows by the store's clock (which the test moves)."""
    opened = await _backend(request.param)
    yield opened
    await opened.store.close()


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[ResponseStore, ...]]:
    """Two stores over the same data, as two gateway replicas have (SQLite: two connections to one file)."""
    need(request.param)
    stores: tuple[ResponseStore, ...]
    if request.param == "sqlite":
        path = str(tmp_path / "responses.sqlite3")
        stores = SQLiteStore(path, TTL), SQLiteStore(path, TTL)
    elif request.param == "redis":
        stores = RedisStore(REDIS_URL, TTL), RedisStore(REDIS_URL, TTL)
    else:
        stores = PostgresStore(POSTGRES_URL, ttl_seconds=TTL), PostgresStore(POSTGRES_URL, ttl_seconds=TTL)
    yield stores
    for store in stores:
        await store.close()


@pytest.fixture
async def bare_postgres() -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """An autocommit connection to the test database as a release before migrations left it: without
    Rosetta's tables (dropped again afterwards, so every run starts from the same state)."""
    need("postgres")
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await drop_rosetta_tables(conn)
        yield conn
        await drop_rosetta_tables(conn)


async def drop_rosetta_tables(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {', '.join(ROSETTA_TABLES)}")
