"""Stored responses: what `previous_response_id`, `GET /v1/responses/{id}` and `input_items` read."""

from __future__ import annotations

from config.models import Store
from gateway.store.base import ResponseStore
from gateway.store.postgres import PostgresStore
from gateway.store.redis import RedisStore
from gateway.store.sqlite import SQLiteStore


def open_store(config: Store) -> ResponseStore:
    """SQLite for one process; Redis or PostgreSQL when replicas share state."""
    url = config.url.get_secret_value() if config.url else ""
    if config.kind == "redis":
        return RedisStore(url, config.ttl_seconds)
    if config.kind == "postgres":
        return PostgresStore(url)
    return SQLiteStore(config.path)
