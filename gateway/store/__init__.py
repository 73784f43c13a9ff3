"""Stored responses: what `previous_response_id`, `GET /v1/responses/{id}` and `input_items` read."""

from __future__ import annotations

from config.models import Store
from gateway.store.base import ResponseStore
from gateway.store.sqlite import SQLiteStore


def open_store(config: Store) -> ResponseStore:
    return SQLiteStore(config.path)
