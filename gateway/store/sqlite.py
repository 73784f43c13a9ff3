"""The embedded default store: one SQLite file (or `:memory:`), accessed from a worker thread.

SQLite suits one gateway process; replicas share state through the Redis or PostgreSQL stores instead.
Writes are committed before `put` returns, so a request chaining on a response right after its terminal
event always finds it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import orjson

from gateway.store.base import StoredResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    team TEXT NOT NULL,
    body BLOB NOT NULL
)
"""


class SQLiteStore:
    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def _run(self, sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            return cursor.fetchall()

    async def put(self, record: StoredResponse) -> None:
        body = orjson.dumps(record.body())
        sql = "INSERT OR REPLACE INTO responses (id, team, body) VALUES (?, ?, ?)"
        await asyncio.to_thread(self._run, sql, (record.id, record.team, body))

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        sql = "SELECT body FROM responses WHERE id = ? AND team = ?"
        rows = await asyncio.to_thread(self._run, sql, (response_id, team))
        if not rows:
            return None
        return StoredResponse.from_body(response_id, team, orjson.loads(rows[0][0]))  # type: ignore[arg-type]

    async def delete(self, response_id: str, team: str) -> bool:
        sql = "DELETE FROM responses WHERE id = ? AND team = ? RETURNING id"
        return bool(await asyncio.to_thread(self._run, sql, (response_id, team)))

    async def close(self) -> None:
        with self._lock:
            self._db.close()
