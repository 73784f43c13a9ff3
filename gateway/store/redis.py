"""Redis store: one key per response (`rosetta:response:<team>:<id>`), shared by every replica.

The team is part of the key, so a lookup with another team's principal finds nothing. `ttl_seconds` sets
the key expiry (Redis keeps nothing on disk here by default: use a persistent Redis for durable chains).
Items are indexed for `item_reference` under `rosetta:item:<team>:<item id>`, a hash of the response that
introduced the item and its body, expiring at the same instant as that response.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from gateway.store.base import JSON, StoredResponse, new_items

# Response and index entries in one atomic step, all expiring at one instant (taken once from the server's
# clock: per-key EXPIREs would land milliseconds apart). An item stays with the response that introduced
# it: a later response carrying the same id only refreshes it if it is that response.
# KEYS: the response, then its items. ARGV: response id, ttl seconds or "", response body, item bodies.
_PUT = """
local expire_at
if ARGV[2] ~= '' then
    local now = redis.call('TIME')
    expire_at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[2]) * 1000
end
local function expire(key)
    if expire_at then redis.call('PEXPIREAT', key, expire_at) else redis.call('PERSIST', key) end
end
redis.call('SET', KEYS[1], ARGV[3])
expire(KEYS[1])
for i = 2, #KEYS do
    local owner = redis.call('HGET', KEYS[i], 'response')
    if not owner or owner == ARGV[1] then
        redis.call('HSET', KEYS[i], 'response', ARGV[1], 'body', ARGV[i + 2])
        expire(KEYS[i])
    end
end
"""

# KEYS: the response, then the items it may have introduced. ARGV: response id. Returns 1 if it existed.
_DELETE = """
for i = 2, #KEYS do
    if redis.call('HGET', KEYS[i], 'response') == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return redis.call('DEL', KEYS[1])
"""


class RedisStore:
    def __init__(self, url: str, ttl_seconds: int | None = None) -> None:
        self._redis = Redis.from_url(url)
        self._ttl = ttl_seconds
        self._put = self._redis.register_script(_PUT)
        self._delete = self._redis.register_script(_DELETE)

    @staticmethod
    def _key(response_id: str, team: str) -> str:
        return f"rosetta:response:{team}:{response_id}"

    @staticmethod
    def _item_key(item_id: str, team: str) -> str:
        return f"rosetta:item:{team}:{item_id}"

    async def put(self, record: StoredResponse) -> None:
        items = new_items(record)
        keys = [self._key(record.id, record.team), *(self._item_key(i, record.team) for i in items)]
        ttl = "" if self._ttl is None else str(self._ttl)
        bodies = [orjson.dumps(record.body()), *map(orjson.dumps, items.values())]
        await self._put(keys=keys, args=[record.id, ttl, *bodies])

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        body = await self._redis.get(self._key(response_id, team))
        if body is None:
            return None
        return StoredResponse.from_body(response_id, team, orjson.loads(body))

    async def get_item(self, item_id: str, team: str) -> dict[str, JSON] | None:
        body = await self._redis.hget(self._item_key(item_id, team), "body")
        if body is None:
            return None
        item: dict[str, JSON] = orjson.loads(body)
        return item

    async def delete(self, response_id: str, team: str) -> bool:
        """Reads the record first for the ids of the items it introduced (the owner check in `_DELETE`
        leaves the ones another response introduced)."""
        record = await self.get(response_id, team)
        if record is None:
            return False
        items = new_items(record)  # history_length reads back as 0: every item, owners checked in Redis
        keys = [self._key(response_id, team), *(self._item_key(i, team) for i in items)]
        return bool(await self._delete(keys=keys, args=[response_id]))

    async def purge_expired(self) -> int:
        """Redis expires the keys itself."""
        return 0

    async def close(self) -> None:
        await self._redis.aclose()
