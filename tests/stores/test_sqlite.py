"""The embedded SQLite store: exact round trips, team scoping, persistence across reopen."""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import StoredResponse
from gateway.store.sqlite import SQLiteStore

RECORD = StoredResponse(
    id="resp_1",
    team="a",
    response={"id": "resp_1", "object": "response", "output": [{"type": "message", "content": ["é\u2028"]}]},
    input_items=[{"id": "msg_1", "type": "message", "role": "user", "content": "hi"}],
)


async def test_round_trip_and_team_scope() -> None:
    store = SQLiteStore()
    await store.put(RECORD)
    assert await store.get("resp_1", "a") == RECORD
    assert await store.get("resp_1", "b") is None
    assert await store.delete("resp_1", "b") is False
    assert await store.delete("resp_1", "a") is True
    assert await store.get("resp_1", "a") is None
    await store.close()


async def test_a_file_store_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "responses.sqlite3")
    first = SQLiteStore(path)
    await first.put(RECORD)
    await first.close()
    second = SQLiteStore(path)
    assert await second.get("resp_1", "a") == RECORD
    await second.close()
