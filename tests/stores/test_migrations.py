"""Versioned schema migrations: a database made by the release before them upgrades in place with its rows
readable, reopening changes nothing, a failed migration leaves nothing half done, and PostgreSQL replicas
starting together take turns."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson
import psycopg
import pytest

import gateway.store.migrations
import gateway.store.sqlite
from gateway.store.migrations import Backend, Migration, migrations
from gateway.store.postgres import MIGRATION_LOCK_KEY, PostgresStore
from gateway.store.sqlite import SQLiteStore
from tests.stores.support import POSTGRES_URL, chained, item, record

Connection = psycopg.AsyncConnection[tuple[object, ...]]

# The schemas the release before migrations created, verbatim: migration 0001 must be exactly these.
OLD_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    body BLOB NOT NULL
)
"""
OLD_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS rosetta_responses (
    team TEXT NOT NULL,
    id TEXT NOT NULL,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (team, id)
)
"""
MIGRATIONS = Path(gateway.store.migrations.__file__).parent


def every_version(backend: Backend) -> list[int]:
    """What a database records once up to date: one version per migration file in the checkout."""
    return list(range(1, len(list((MIGRATIONS / backend).glob("*.sql"))) + 1))


@pytest.mark.parametrize(
    ("backend", "old"), [("sqlite", OLD_SQLITE_SCHEMA), ("postgres", OLD_POSTGRES_SCHEMA)]
)
def test_every_file_is_a_migration_and_the_first_is_the_old_schema(backend: Backend, old: str) -> None:
    files = sorted(path.name for path in (MIGRATIONS / backend).glob("*.sql"))
    loaded = migrations(backend)
    assert [(migration.version, migration.name) for migration in loaded] == list(enumerate(files, 1))
    assert loaded[0].sql.strip().rstrip(";") == old.strip()


# SQLite


def _old_sqlite_file(path: Path) -> list[str]:
    """A file as the previous release left it, with two responses in it; their ids."""
    stored = [record(), record()]
    with sqlite3.connect(path) as db:
        db.execute(OLD_SQLITE_SCHEMA)
        for one in stored:
            db.execute(
                "INSERT INTO responses (id, team, body) VALUES (?, ?, ?)",
                (one.id, one.team, orjson.dumps(one.body())),
            )
    db.close()
    return [one.id for one in stored]


def _sqlite_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_version ORDER BY version")]
    db.close()
    return versions


async def test_an_old_sqlite_file_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    ids = _old_sqlite_file(path)
    store = SQLiteStore(str(path), ttl_seconds=60)
    for response_id in ids:
        found = await store.get(response_id, "a")
        assert found is not None and found.response["id"] == response_id
        assert found.input_items[0]["id"] == "msg_1"
    asked = item()
    await store.put(chained([], [asked], []))  # the new columns and tables are there
    assert await store.get_item(asked["id"], "a") == asked
    await store.close()
    assert _sqlite_versions(path) == every_version("sqlite")


async def test_reopening_a_sqlite_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    stored = record()
    first = SQLiteStore(str(path))
    await first.put(stored)
    await first.close()
    for _ in range(2):
        again = SQLiteStore(str(path))
        assert await again.get(stored.id, "a") == stored
        await again.close()
    assert _sqlite_versions(path) == every_version("sqlite")


async def test_a_failing_sqlite_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "responses.sqlite3"
    ids = _old_sqlite_file(path)
    broken = Migration(4, "0004_broken.sql", "CREATE TABLE half_done (a);\nSELECT * FROM no_such_table;\n")
    monkeypatch.setattr(
        gateway.store.sqlite, "pending", lambda backend, current: (*migrations(backend), broken)
    )
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        SQLiteStore(str(path))
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = [row[1] for row in db.execute("PRAGMA table_info(responses)")]
    db.close()
    assert tables == {"responses"}
    assert columns == ["id", "team", "body"]
    monkeypatch.undo()
    store = SQLiteStore(str(path))
    assert [await store.get(response_id, "a") is not None for response_id in ids] == [True, True]
    await store.close()


# PostgreSQL: these start from a database without Rosetta's tables (`bare_postgres`).


async def _postgres_versions(conn: Connection) -> list[int]:
    cursor = await conn.execute("SELECT version FROM rosetta_schema_version ORDER BY version")
    return [int(str(row[0])) for row in await cursor.fetchall()]


async def test_an_old_postgres_database_upgrades_and_keeps_its_rows(bare_postgres: Connection) -> None:
    stored = [record(), record("b")]
    await bare_postgres.execute(OLD_POSTGRES_SCHEMA)
    for one in stored:
        await bare_postgres.execute(
            "INSERT INTO rosetta_responses (team, id, body) VALUES (%s, %s, %s)",
            (one.team, one.id, orjson.dumps(one.body()).decode()),
        )
    store = PostgresStore(POSTGRES_URL, ttl_seconds=60)
    for one in stored:
        assert await store.get(one.id, one.team) == one
    asked = item()
    await store.put(chained([], [asked], []))
    assert await store.get_item(asked["id"], "a") == asked
    await store.close()
    assert await _postgres_versions(bare_postgres) == every_version("postgres")


async def test_reopening_a_postgres_database_changes_nothing(bare_postgres: Connection) -> None:
    stored = record()
    first = PostgresStore(POSTGRES_URL)
    await first.put(stored)
    await first.close()
    for _ in range(2):
        again = PostgresStore(POSTGRES_URL)
        assert await again.get(stored.id, "a") == stored
        await again.close()
    assert await _postgres_versions(bare_postgres) == every_version("postgres")


async def test_postgres_replicas_starting_together_all_open(bare_postgres: Connection) -> None:
    replicas = [PostgresStore(POSTGRES_URL) for _ in range(4)]
    found = await asyncio.gather(*(replica.get("resp_none", "a") for replica in replicas))
    assert found == [None] * 4
    await asyncio.gather(*(replica.close() for replica in replicas))
    assert await _postgres_versions(bare_postgres) == every_version("postgres")


async def test_a_postgres_migration_waits_for_the_advisory_lock(bare_postgres: Connection) -> None:
    """While another session (a replica migrating) holds the lock, opening waits without touching the
    schema; once it is released the migration runs."""
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as holder:
        await holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        store = PostgresStore(POSTGRES_URL)
        opening = asyncio.create_task(store.get("resp_none", "a"))
        async with asyncio.timeout(10):
            while not await _someone_waits_for_the_lock(bare_postgres):
                await asyncio.sleep(0.01)
        assert not opening.done()
        cursor = await bare_postgres.execute("SELECT to_regclass('rosetta_schema_version') IS NULL")
        assert await cursor.fetchone() == (True,)
        await holder.commit()
    assert await opening is None
    await store.close()
    assert await _postgres_versions(bare_postgres) == every_version("postgres")


async def _someone_waits_for_the_lock(conn: Connection) -> bool:
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s AND objid = %s AND objsubid = 1",
        (MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF),
    )
    return await cursor.fetchone() == (1,)
