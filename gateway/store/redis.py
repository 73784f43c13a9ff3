"""Redis store: one key per response (`rosetta:response:<team>:<id>`), shared by every replica.

The team is part of the key, so a lookup with another team's principal finds nothing. `ttl_seconds` sets
the key expiry (Redis keeps nothing on disk here by default: use a persistent Redis for durable chains).
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from gateway.store.base import StoredResponse


class RedisStore:
    def __init__(self, url: str, ttl_seconds: int | None = None) -> None:
        self._redis = Redis.from_url(url)
        self._ttl = ttl_seconds

    @staticmethod
    def _key(response_id: str, team: str) -> str:
        return f"rosetta:response:{team}:{response_id}"

    async def put(self, record: StoredResponse) -> None:
        body = orjson.dumps(record.body())
        await self._redis.set(self._key(record.id, record.team), body, ex=self._ttl)

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        body = await self._redis.get(self._key(response_id, team))
        if body is None:
            return None
        return StoredResponse.from_body(response_id, team, orjson.loads(body))

    async def delete(self, response_id: str, team: str) -> bool:
        return bool(await self._redis.delete(self._key(response_id, team)))

    async def close(self) -> None:
        await self._redis.aclose()
