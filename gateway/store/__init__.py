"""Stored responses: what `previous_response_id`, `GET /v1/responses/{id}` and `input_items` read."""

from __future__ import annotations

import asyncio
import logging

from config.models import Store
from gateway.store.base import ResponseStore
from gateway.store.postgres import PostgresStore
from gateway.store.redis import RedisStore
from gateway.store.sqlite import SQLiteStore

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 300.0
"""How often a running gateway deletes expired responses (reads already hide them: this frees space)."""


def open_store(config: Store) -> ResponseStore:
    """SQLite for one process; Redis or PostgreSQL when replicas share state."""
    url = config.url.get_secret_value() if config.url else ""
    if config.kind == "redis":
        return RedisStore(url, config.ttl_seconds)
    if config.kind == "postgres":
        return PostgresStore(url, ttl_seconds=config.ttl_seconds)
    return SQLiteStore(config.path, config.ttl_seconds)


async def purge_periodically(store: ResponseStore, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    """Purge expired responses now and every `interval` seconds, until cancelled (at shutdown).

    A failed purge (store unreachable, say) is a warning and the loop goes on: the next one catches up.
    The warning names the error type only, since a driver's message can carry the store's URL.
    """
    while True:
        try:
            removed = await store.purge_expired()
        except Exception as exc:
            logger.warning("purging expired responses failed: %s", type(exc).__name__)
        else:
            if removed:
                logger.info("purged %d expired responses", removed)
        await asyncio.sleep(interval)
