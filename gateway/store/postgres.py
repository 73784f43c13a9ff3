"""PostgreSQL store: one row per response in `rosetta_responses`, shared by every replica.

A small async connection pool per process; the table is created on first use. Rows are keyed by
(team, id) so another team's lookup finds nothing.
"""

from __future__ import annotations

import asyncio

import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from gateway.store.base import StoredResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rosetta_responses (
    team TEXT NOT NULL,
    id TEXT NOT NULL,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (team, id)
)
"""


class PostgresStore:
    def __init__(self, url: str, max_connections: int = 10) -> None:
        self._pool = AsyncConnectionPool(url, min_size=1, max_size=max_connections, open=False)
        self._ready = asyncio.Lock()
        self._opened = False

    async def _connection_pool(self) -> AsyncConnectionPool:
        async with self._ready:
            if not self._opened:
                await self._pool.open()
                async with self._pool.connection() as conn:
                    await conn.execute(_SCHEMA)
                self._opened = True
        return self._pool

    async def put(self, record: StoredResponse) -> None:
        body = Jsonb(record.body(), dumps=_dumps)
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO rosetta_responses (team, id, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (team, id) DO UPDATE SET body = EXCLUDED.body",
                (record.team, record.id, body),
            )

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT body FROM rosetta_responses WHERE team = %s AND id = %s", (team, response_id)
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return StoredResponse.from_body(response_id, team, row[0])

    async def delete(self, response_id: str, team: str) -> bool:
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM rosetta_responses WHERE team = %s AND id = %s", (team, response_id)
            )
            return cursor.rowcount > 0

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()
