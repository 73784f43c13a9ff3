"""PostgreSQL store: one row per response in `rosetta_responses`, shared by every replica.

A small async connection pool per process; on first use the schema is brought up to date from the
numbered files in `migrations/postgres`. Rows are keyed by (team, id) so another team's lookup finds
nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.store.base import ACTIVE, JSON, StoredResponse, new_items
from gateway.store.migrations import pending

MIGRATION_LOCK_KEY = 0x726F7365747461
"""The advisory lock (b"rosetta" as a number) that serialises migrations when replicas start together."""

_LIVE = "(expires_at IS NULL OR expires_at > %(now)s)"

# An item stays with the response that introduced it: a later response carrying the same id (its chain's
# history, a background run's next put of itself) only refreshes it if it is that response, or takes it
# over once the owner has expired.
_INDEX_ITEM = """
INSERT INTO rosetta_items AS i (team, item_id, response_id, body, expires_at)
VALUES (%(team)s, %(item_id)s, %(response_id)s, %(body)s, %(expires_at)s)
ON CONFLICT (team, item_id) DO UPDATE
SET response_id = EXCLUDED.response_id, body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
WHERE i.response_id = EXCLUDED.response_id OR i.expires_at <= %(now)s
"""

_PUT = """
INSERT INTO rosetta_responses (team, id, body, expires_at)
VALUES (%(team)s, %(id)s, %(body)s, %(expires_at)s)
ON CONFLICT (team, id) DO UPDATE SET body = EXCLUDED.body, expires_at = EXCLUDED.expires_at
"""

_PUT_IF_STATUS = f"""
UPDATE rosetta_responses SET body = %(body)s, expires_at = %(expires_at)s
WHERE team = %(team)s AND id = %(id)s AND {_LIVE} AND body->'response'->>'status' = ANY(%(statuses)s)
"""

# The response row, locked (FOR SHARE) until the transaction ends if it is live and running: a delete or
# put of it (cancel, final result) waits for the events appended meanwhile, and one that got there first
# is seen (READ COMMITTED re-reads the row it waited for), so nothing is appended after it.
_LOCK_IF_RUNNING = f"""
SELECT 1 FROM rosetta_responses
WHERE team = %(team)s AND id = %(id)s AND {_LIVE} AND body->'response'->>'status' = ANY(%(statuses)s)
FOR SHARE
"""

_PUBLISHED = """
SELECT coalesce(max(seq) + 1, 0) FROM rosetta_events WHERE team = %(team)s AND response_id = %(id)s
"""

_APPEND_EVENT = """
INSERT INTO rosetta_events (team, response_id, seq, body) VALUES (%(team)s, %(id)s, %(seq)s, %(body)s)
ON CONFLICT DO NOTHING
"""

# A response's published events are read only while it is live (they go with it: delete, purge).
_EVENTS_AFTER = """
SELECT e.body FROM rosetta_events e JOIN rosetta_responses r ON r.team = e.team AND r.id = e.response_id
WHERE e.team = %(team)s AND e.response_id = %(id)s AND e.seq > %(after)s
AND (r.expires_at IS NULL OR r.expires_at > %(now)s)
ORDER BY e.seq
"""

_PURGE = """
WITH expired AS (DELETE FROM rosetta_responses WHERE expires_at <= %(now)s RETURNING team, id),
events AS (
    DELETE FROM rosetta_events e USING expired x WHERE e.team = x.team AND e.response_id = x.id
)
SELECT count(*) FROM expired
"""


class PostgresStore:
    def __init__(
        self,
        url: str,
        max_connections: int = 10,
        ttl_seconds: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`ttl_seconds`: how long a response is kept after its last put (None: until deleted).
        `clock`: epoch seconds, injectable so tests move time instead of waiting."""
        self._pool = AsyncConnectionPool(url, min_size=1, max_size=max_connections, open=False)
        self._ready = asyncio.Lock()
        self._opened = False
        self._ttl = ttl_seconds
        self._clock = clock

    async def _connection_pool(self) -> AsyncConnectionPool:
        async with self._ready:
            if not self._opened:
                await self._pool.open()
                async with self._pool.connection() as conn:
                    await _migrate(conn)
                self._opened = True
        return self._pool

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def put(self, record: StoredResponse, *, if_status_in: tuple[str, ...] | None = None) -> bool:
        """With `if_status_in`, one UPDATE checks and writes: it locks the row, and if a concurrent delete or
        put got there first it re-checks the row they left (READ COMMITTED re-evaluates the WHERE), so it
        never recreates a deleted response or overwrites a cancelled one. Its items are indexed in the
        same transaction, only if it wrote."""
        now = self._now()
        expires_at = None if self._ttl is None else now + timedelta(seconds=self._ttl)
        items = [
            {
                "team": record.team,
                "item_id": item_id,
                "response_id": record.id,
                "body": Jsonb(item, dumps=_dumps),
                "expires_at": expires_at,
                "now": now,
            }
            for item_id, item in new_items(record).items()
        ]
        args = {
            "team": record.team,
            "id": record.id,
            "body": Jsonb(record.body(), dumps=_dumps),
            "expires_at": expires_at,
            "now": now,
            "statuses": list(if_status_in or ()),
        }
        pool = await self._connection_pool()
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_PUT if if_status_in is None else _PUT_IF_STATUS, args)
            if cursor.rowcount != 1:
                return False
            if items:
                async with conn.cursor() as items_cursor:
                    await items_cursor.executemany(_INDEX_ITEM, items)
        return True

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        row = await self._fetch_one(
            f"SELECT body FROM rosetta_responses WHERE team = %(team)s AND id = %(id)s AND {_LIVE}",
            {"team": team, "id": response_id, "now": self._now()},
        )
        return None if row is None else StoredResponse.from_body(response_id, team, row[0])

    async def get_item(self, item_id: str, team: str) -> dict[str, JSON] | None:
        row = await self._fetch_one(
            f"SELECT body FROM rosetta_items WHERE team = %(team)s AND item_id = %(item_id)s AND {_LIVE}",
            {"team": team, "item_id": item_id, "now": self._now()},
        )
        return None if row is None else dict(row[0])

    async def _fetch_one(self, sql: str, args: dict[str, Any]) -> tuple[Any, ...] | None:
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(sql, args)
            return await cursor.fetchone()

    async def append_events(
        self, response_id: str, team: str, start: int, events: list[dict[str, JSON]]
    ) -> bool:
        """In one transaction that holds the response row (`_LOCK_IF_RUNNING`) while it appends."""
        if start < 0:
            raise ValueError(f"events start at position 0, not {start}")
        args = {"team": team, "id": response_id, "now": self._now(), "statuses": list(ACTIVE)}
        pool = await self._connection_pool()
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_LOCK_IF_RUNNING, args)
            if await cursor.fetchone() is None:
                return False
            cursor = await conn.execute(_PUBLISHED, args)
            row = await cursor.fetchone()
            published = int(row[0]) if row else 0
            if start > published:
                raise ValueError(f"events from position {start} would leave a gap after {published}")
            rows = [
                {"team": team, "id": response_id, "seq": start + i, "body": Jsonb(event, dumps=_dumps)}
                for i, event in enumerate(events)
            ][published - start :]
            if rows:
                async with conn.cursor() as events_cursor:
                    await events_cursor.executemany(_APPEND_EVENT, rows)
        return True

    async def get_events(self, response_id: str, team: str, after: int) -> list[dict[str, JSON]]:
        args = {"team": team, "id": response_id, "after": after, "now": self._now()}
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(_EVENTS_AFTER, args)
            return [dict(body) for (body,) in await cursor.fetchall()]

    async def delete(self, response_id: str, team: str) -> bool:
        args = {"team": team, "id": response_id, "now": self._now()}
        pool = await self._connection_pool()
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                f"DELETE FROM rosetta_responses WHERE team = %(team)s AND id = %(id)s RETURNING {_LIVE}", args
            )
            row = await cursor.fetchone()
            await conn.execute(
                "DELETE FROM rosetta_items WHERE team = %(team)s AND response_id = %(id)s", args
            )
            await conn.execute(
                "DELETE FROM rosetta_events WHERE team = %(team)s AND response_id = %(id)s", args
            )
        return row is not None and bool(row[0])

    async def purge_expired(self) -> int:
        now = {"now": self._now()}
        pool = await self._connection_pool()
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(_PURGE, now)  # the responses, and their published events
            row = await cursor.fetchone()
            await conn.execute("DELETE FROM rosetta_items WHERE expires_at <= %(now)s", now)
            return int(row[0]) if row else 0

    async def close(self) -> None:
        """Also after a failed migration, which leaves the pool open (closing a closed pool is a no-op)."""
        await self._pool.close()


async def _migrate(conn: AsyncConnection[Any]) -> None:
    """Bring the database up to the newest schema in one transaction. The transaction-level advisory lock
    makes replicas that start together take turns: the first migrates, the others then find nothing to do
    (without it they would race on CREATE TABLE and on recording the version)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS rosetta_schema_version ("
            " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM rosetta_schema_version")
        row = await cursor.fetchone()
        for migration in pending("postgres", row[0] if row else 0):
            await conn.execute(migration.sql)  # several statements: allowed without parameters
            await conn.execute(
                "INSERT INTO rosetta_schema_version (version) VALUES (%s)", (migration.version,)
            )


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()
