"""Redis store: one key per response (`rosetta:response:<len(team)>:<team>:<id>`), shared by every replica.

The team is part of the key, so a lookup with another team's principal finds nothing. It is length-prefixed
because ids come from clients (`previous_response_id`, URL paths, item ids) and team names may contain the
':' separator: with a bare `<team>:<id>`, team "acme" asking for id "x:resp_1" would read team "acme:x"'s
"resp_1". Keys written before this layout (`rosetta:response:<team>:<id>`) are no longer read; no migration
moves them: the data is transient, and they expire by their own TTL (a store without `ttl_seconds` keeps
them until removed by hand).

`ttl_seconds` sets the key expiry (Redis keeps nothing on disk here by default: use a persistent Redis for
durable chains). Items are indexed for `item_reference` under `rosetta:item:<len(team)>:<team>:<item id>`, a
hash of the response that introduced the item and its body, expiring at the same instant as that response.
A background run's published events are the list `rosetta:events:<len(team)>:<team>:<id>` (an event's
position in the list is its position in the stream), which expires with its response and is deleted with it.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from gateway.store.base import ACTIVE, JSON, StoredResponse, new_items

# Lua shared by the scripts below: whether the response at `key` exists and its status is one of
# `statuses` (a JSON array).
_STATUS_IN = """
local function status_in(key, statuses)
    local current = redis.call('GET', key)
    if not current then return false end
    local response = cjson.decode(current)['response']
    local status = type(response) == 'table' and response['status']
    for _, wanted in ipairs(cjson.decode(statuses)) do
        if status == wanted then return true end
    end
    return false
end
"""

# Response and index entries in one atomic step, all expiring at one instant (taken once from the server's
# clock: per-key EXPIREs would land milliseconds apart). An item stays with the response that introduced
# it: a later response carrying the same id only refreshes it if it is that response. A conditional put
# first checks, in the same step, that the response key exists and its status is one of those allowed.
# The response's published events, if it has any, go on expiring with it.
# KEYS: the response, its events, then its items. ARGV: response id, ttl seconds or "", the allowed
# statuses as a JSON array or "" (unconditional), response body, item bodies. Returns 1 if it wrote, 0 if
# the check failed.
_PUT = (
    _STATUS_IN
    + """
if ARGV[3] ~= '' and not status_in(KEYS[1], ARGV[3]) then return 0 end
local expire_at
if ARGV[2] ~= '' then
    local now = redis.call('TIME')
    expire_at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[2]) * 1000
end
local function expire(key)
    if expire_at then redis.call('PEXPIREAT', key, expire_at) else redis.call('PERSIST', key) end
end
redis.call('SET', KEYS[1], ARGV[4])
expire(KEYS[1])
expire(KEYS[2])
for i = 3, #KEYS do
    local owner = redis.call('HGET', KEYS[i], 'response')
    if not owner or owner == ARGV[1] then
        redis.call('HSET', KEYS[i], 'response', ARGV[1], 'body', ARGV[i + 2])
        expire(KEYS[i])
    end
end
return 1
"""
)

# Appends to the response's events the ones not published yet, only while its status is one of those
# allowed, and gives the list the response's expiry. KEYS: the response, its events. ARGV: the allowed
# statuses as a JSON array, the position of the first event given, event bodies. Returns 1 if the check
# passed, 0 if not, -1 if the first event would leave a gap (nothing is written then).
_APPEND = (
    _STATUS_IN
    + """
if not status_in(KEYS[1], ARGV[1]) then return 0 end
local published = redis.call('LLEN', KEYS[2])
local start = tonumber(ARGV[2])
if start > published then return -1 end
for i = 3 + published - start, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
local expire_at = redis.call('PEXPIRETIME', KEYS[1])
if expire_at > 0 then redis.call('PEXPIREAT', KEYS[2], expire_at) else redis.call('PERSIST', KEYS[2]) end
return 1
"""
)

# KEYS: the response, its events, then the items it may have introduced. ARGV: response id, the response
# body these items were read from. Deletes only if the response still has that body (returns 1), else
# returns 0: a put in between may have indexed items the caller does not know of, so it has to read again.
_DELETE = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
for i = 3, #KEYS do
    if redis.call('HGET', KEYS[i], 'response') == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


class RedisStore:
    def __init__(self, url: str, ttl_seconds: int | None = None) -> None:
        self._redis = Redis.from_url(url)
        self._ttl = ttl_seconds
        self._put = self._redis.register_script(_PUT)
        self._delete = self._redis.register_script(_DELETE)
        self._append = self._redis.register_script(_APPEND)

    async def put(self, record: StoredResponse, *, if_status_in: tuple[str, ...] | None = None) -> bool:
        """With `if_status_in` the check runs inside the script, so no put or delete of another process can
        land between it and the write."""
        items = new_items(record)
        keys = [
            response_key(record.team, record.id),
            events_key(record.team, record.id),
            *(item_key(record.team, i) for i in items),
        ]
        ttl = "" if self._ttl is None else str(self._ttl)
        statuses = b"" if if_status_in is None else orjson.dumps(list(if_status_in))
        bodies = [orjson.dumps(record.body()), *map(orjson.dumps, items.values())]
        return bool(await self._put(keys=keys, args=[record.id, ttl, statuses, *bodies]))

    async def get(self, response_id: str, team: str) -> StoredResponse | None:
        body = await self._redis.get(response_key(team, response_id))
        if body is None:
            return None
        return StoredResponse.from_body(response_id, team, orjson.loads(body))

    async def get_item(self, item_id: str, team: str) -> dict[str, JSON] | None:
        body = await self._redis.hget(item_key(team, item_id), "body")
        if body is None:
            return None
        item: dict[str, JSON] = orjson.loads(body)
        return item

    async def append_events(
        self, response_id: str, team: str, start: int, events: list[dict[str, JSON]]
    ) -> bool:
        """The check, the append and the expiry run in one script (`_APPEND`)."""
        if start < 0:
            raise ValueError(f"events start at position 0, not {start}")
        keys = [response_key(team, response_id), events_key(team, response_id)]
        args: list[bytes | int] = [orjson.dumps(list(ACTIVE)), start, *map(orjson.dumps, events)]
        appended = int(await self._append(keys=keys, args=args))
        if appended < 0:
            raise ValueError(f"events from position {start} would leave a gap after those published")
        return appended == 1

    async def get_events(self, response_id: str, team: str, after: int) -> list[dict[str, JSON]]:
        """Read with the response key in one transaction: only a live response's events."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.exists(response_key(team, response_id))
            pipe.lrange(events_key(team, response_id), max(after + 1, 0), -1)
            live, bodies = await pipe.execute()
        return [orjson.loads(body) for body in bodies] if live else []

    async def delete(self, response_id: str, team: str) -> bool:
        """Reads the record first for the ids of the items it introduced (the owner check in `_DELETE`
        leaves the ones another response introduced). If a put changed it in between (a runner's progress
        adding output items), it reads again: deleting by a stale read would leave those items indexed."""
        key = response_key(team, response_id)
        while True:
            body = await self._redis.get(key)
            if body is None:
                return False
            record = StoredResponse.from_body(response_id, team, orjson.loads(body))
            items = new_items(record)  # history_length reads back as 0: every item, owners checked in Redis
            keys = [key, events_key(team, response_id), *(item_key(team, i) for i in items)]
            if await self._delete(keys=keys, args=[response_id, body]):
                return True

    async def purge_expired(self) -> int:
        """Redis expires the keys itself."""
        return 0

    async def close(self) -> None:
        await self._redis.aclose()


def response_key(team: str, response_id: str) -> str:
    """The key of `team`'s response `response_id`: one key per (team, id) pair, whatever either contains."""
    return f"rosetta:response:{_scope(team)}:{response_id}"


def events_key(team: str, response_id: str) -> str:
    """The key of the list of events `team`'s background response `response_id` has published."""
    return f"rosetta:events:{_scope(team)}:{response_id}"


def item_key(team: str, item_id: str) -> str:
    """The key of `team`'s index entry for item `item_id`."""
    return f"rosetta:item:{_scope(team)}:{item_id}"


def _scope(team: str) -> str:
    """`team` prefixed with its length, so where it ends in a key is never a guess: `4:acme` then the id,
    whatever ':' the team or the id holds."""
    return f"{len(team)}:{team}"
