"""The embedded default store: one SQLite file (or `:memory:`), accessed from a worker thread.

SQLite suits one gateway process; replicas share state through the Redis or PostgreSQL stores instead.
Writes are committed before `put` returns, so a request chaining on a response right after its terminal
event always finds it. The schema comes from the numbered files in `migrations/sqlite`, applied on open.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson

from gateway.store.base import ACTIVE, JSON, StoredResponse, new_items
from gateway.store.migrations import pending

_T = TypeVar("_T")

_LIVE = "(expires_at IS NULL OR expires_at > :now)"
_LIVE_RESPONSE = f"SELECT body FROM responses WHERE id = :id AND team = :team AND {_LIVE}"

# An item stays with the response that introduced it: a later response carrying the same id (its chain's
# history, a background run's next put of itself) only refreshes it if it is that response, or takes it
# over once the owner has expired.
_INDEX_ITEM = """
INSERT INTO items (team, item_id, response_id, body, expires_at)
VALUES (:team, :item_id, :response_id, :body, :expires_at)
ON CONFLICT (team, item_id) DO UPDATE
SET response_id = excluded.response_id, body = excluded.body, expires_at = excluded.expires_at
WHERE items.response_id = excluded.response_id OR items.expires_at <= :now
"""

_PUBLISHED = "SELECT coalesce(max(seq) + 1, 0) FROM events WHERE team = :team AND response_id = :id"
_APPEND_EVENT = "INSERT INTO events (team, response_id, seq, body) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
# A response's published events are read only while it is live (they go with it: delete, purge).
_EVENTS_AFTER = """
SELECT e.body FROM events e JOIN responses r ON r.id = e.response_id AND r.team = e.team
WHERE e.team = :team AND e.response_id = :id AND e.seq > :after
AND (r.expires_at IS NULL OR r.expires_at > :now)
ORDER BY e.seq
"""
_PURGE_EVENTS = """
DELETE FROM events WHERE (team, response_id) IN (SELECT team, id FROM responses WHERE expires_at <= :now)
"""


class SQLiteStore:
    def __init__(
        self,
        path: str = ":memory:",
        ttl_seconds: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`ttl_seconds`: how long a response is kept after its last put (None: until deleted).
        `clock`: epoch seconds, injectable so tests move time instead of waiting."""
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._lock = threading.Lock()
        self._ttl = ttl_seconds
        self._clock = clock
        self._atomically(_migrate)

    def _run(self, sql: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._db.execute(sql, args)
            return cursor.fetchall()

    def _atomically(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in one write transaction, so a response and its index entries change together (and a
        second process migrating the same file waits, then finds nothing left to do)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    async def put(self, record: StoredResponse, *, if_status_in: tuple[str, ...] | None = None) -> bool:
        """The status check (`if_status_in`) reads the row inside the write transaction: BEGIN IMMEDIATE
        holds the file's write lock from the start, so no other put or delete lands in between."""
        now = self._clock()
        expires_at = None if self._ttl is None else now + self._ttl
        body = orjson.dumps(record.body())
        items = [
            {
                "team": record.team,
                "item_id": item_id,
                "response_id": record.id,
                "body": orjson.dumps(item),
                "expires_at": expires_at,
                "now": now,
            }
            for item_id, item in new_items(record).items()
        ]

        def write(db: sqlite3.Connection) -> bool:
            if if_status_in is not None:
                status = _live_status(db, {"id": record.id, "team": record.team, "now": now})
                if status not in if_status_in:
                    return False
            db.execute(
                "INSERT OR REPLACE INTO responses (id, team, body, expires_at) VALUES (?, ?, ?, ?)",
                (record.id, record.team, body, expires_at),
            )
            db.executemany(_INDEX_ITEM, items)
            return True

        return await asyncio.to_thread(self._atomically, write)

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        body = await self._live_body(_LIVE_RESPONSE, {"id": response_id, "team": team})
        return None if body is None else StoredResponse.from_body(response_id, team, body)

    async def get_item(self, item_id: str, team: str) -> dict[str, JSON] | None:
        sql = f"SELECT body FROM items WHERE team = :team AND item_id = :item_id AND {_LIVE}"
        item: dict[str, JSON] | None = await self._live_body(sql, {"item_id": item_id, "team": team})
        return item

    async def _live_body(self, sql: str, args: dict[str, Any]) -> Any:
        """The decoded `body` of the first row `sql` finds at the clock's now, or None."""
        rows = await asyncio.to_thread(self._run, sql, {**args, "now": self._clock()})
        return orjson.loads(rows[0][0]) if rows else None

    async def append_events(
        self, response_id: str, team: str, start: int, events: list[dict[str, JSON]]
    ) -> bool:
        """Checked and written in one write transaction, as `put(..., if_status_in=...)` is."""
        if start < 0:
            raise ValueError(f"events start at position 0, not {start}")
        args = {"id": response_id, "team": team, "now": self._clock()}
        bodies = [orjson.dumps(event) for event in events]

        def write(db: sqlite3.Connection) -> bool:
            if _live_status(db, args) not in ACTIVE:
                return False
            (published,) = db.execute(_PUBLISHED, args).fetchone()
            if start > published:
                raise ValueError(f"events from position {start} would leave a gap after {published}")
            rows = [(team, response_id, start + i, body) for i, body in enumerate(bodies)]
            db.executemany(_APPEND_EVENT, rows[published - start :])
            return True

        return await asyncio.to_thread(self._atomically, write)

    async def get_events(self, response_id: str, team: str, after: int) -> list[dict[str, JSON]]:
        args = {"id": response_id, "team": team, "after": after, "now": self._clock()}
        rows = await asyncio.to_thread(self._run, _EVENTS_AFTER, args)
        return [orjson.loads(body) for (body,) in rows]

    async def delete(self, response_id: str, team: str) -> bool:
        args = {"id": response_id, "team": team, "now": self._clock()}

        def remove(db: sqlite3.Connection) -> bool:
            live = db.execute(f"SELECT 1 FROM responses WHERE id = :id AND team = :team AND {_LIVE}", args)
            found = live.fetchone() is not None
            db.execute("DELETE FROM responses WHERE id = :id AND team = :team", args)
            db.execute("DELETE FROM items WHERE team = :team AND response_id = :id", args)
            db.execute("DELETE FROM events WHERE team = :team AND response_id = :id", args)
            return found

        return await asyncio.to_thread(self._atomically, remove)

    async def purge_expired(self) -> int:
        now = {"now": self._clock()}

        def purge(db: sqlite3.Connection) -> int:
            db.execute(_PURGE_EVENTS, now)  # first: the expired responses say whose
            removed = db.execute("DELETE FROM responses WHERE expires_at <= :now", now).rowcount
            db.execute("DELETE FROM items WHERE expires_at <= :now", now)
            return removed

        return await asyncio.to_thread(self._atomically, purge)

    async def close(self) -> None:
        with self._lock:
            self._db.close()


def _live_status(db: sqlite3.Connection, args: dict[str, Any]) -> object:
    """The `response["status"]` of the live row `args` names (None if there is none, or it has none)."""
    row = db.execute(_LIVE_RESPONSE, args).fetchone()
    response = orjson.loads(row[0]).get("response") if row is not None else None
    return response.get("status") if isinstance(response, dict) else None


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the file up to the newest schema (inside `_atomically`: all of it, or nothing)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
    (current,) = db.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    for migration in pending("sqlite", current):
        for statement in _statements(migration.sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))


def _statements(script: str) -> Iterator[str]:
    """A script's statements one by one: `executescript` would commit the migration's transaction first."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        yield statement
