"""The item index behind `item_reference` inputs, one contract over every backend: an item is found by
its id within its team while the response that introduced it lives, and never otherwise."""

from __future__ import annotations

from redis.asyncio import Redis

from gateway.store.base import StoredResponse
from gateway.store.redis import RedisStore, item_key, response_key
from tests.stores.support import REDIS_URL, TTL, Backend, chained, item, need


async def test_an_item_is_found_after_put(backend: Backend) -> None:
    said, asked, anonymous = item("hello", role="assistant"), item("hi"), {"type": "message", "role": "user"}
    stored = chained([], [asked, anonymous], [said])
    await backend.store.put(stored)
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.get_item(said["id"], "a") == said
    assert await backend.store.get_item("msg_never_stored", "a") is None


async def test_another_team_finds_nothing(backend: Backend) -> None:
    asked = item()
    await backend.store.put(chained([], [asked], [], team="a"))
    assert await backend.store.get_item(asked["id"], "b") is None
    assert await backend.store.get_item(asked["id"], "a") == asked


async def test_history_items_are_not_indexed_by_a_chained_put(backend: Backend) -> None:
    """Items before `history_length` belong to the earlier response: this put leaves them alone."""
    first_asked, first_said = item("one"), item("two", role="assistant")
    first = chained([], [first_asked], [first_said])
    unstored = item("from a chain this store never saw")
    asked, said = item("three"), item("four", role="assistant")
    second = chained([first_asked, first_said, unstored], [asked], [said])
    await backend.store.put(first)
    await backend.store.put(second)
    assert await backend.store.get_item(unstored["id"], "a") is None
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.get_item(said["id"], "a") == said
    assert await backend.store.delete(first.id, "a") is True
    assert await backend.store.get_item(first_asked["id"], "a") is None
    assert await backend.store.get_item(first_said["id"], "a") is None
    assert await backend.store.get_item(asked["id"], "a") == asked


async def test_deleting_a_response_removes_its_items(backend: Backend) -> None:
    asked, said = item(), item("bye", role="assistant")
    stored = chained([], [asked], [said])
    await backend.store.put(stored)
    assert await backend.store.delete(stored.id, "a") is True
    assert await backend.store.get_item(asked["id"], "a") is None
    assert await backend.store.get_item(said["id"], "a") is None


async def test_repeated_puts_update_the_index_idempotently(backend: Backend) -> None:
    """A background run is put queued (no output), then again as it finishes: same record, more items."""
    asked, said = item(), item("partial", role="assistant")
    queued = chained([], [asked], [])
    await backend.store.put(queued)
    await backend.store.put(queued)
    finished = {**said, "content": [{"type": "output_text", "text": "complete"}]}
    for output in ([said], [finished], [finished]):
        await backend.store.put(
            StoredResponse(queued.id, "a", {**queued.response, "output": output}, [asked])
        )
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.get_item(said["id"], "a") == finished
    assert await backend.store.delete(queued.id, "a") is True
    assert await backend.store.get_item(asked["id"], "a") is None
    assert await backend.store.get_item(said["id"], "a") is None


async def test_an_item_stays_with_the_response_that_introduced_it(backend: Backend) -> None:
    """A later response carrying the same id (say a re-put that lost its history_length) neither
    overwrites the item nor takes it away when deleted."""
    asked = item("original")
    first = chained([], [asked], [])
    copy = {**asked, "content": [{"type": "input_text", "text": "copy"}]}
    second = chained([], [copy], [])
    await backend.store.put(first)
    await backend.store.put(second)
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.delete(second.id, "a") is True
    assert await backend.store.get_item(asked["id"], "a") == asked
    assert await backend.store.delete(first.id, "a") is True
    assert await backend.store.get_item(asked["id"], "a") is None


async def test_items_expire_with_their_response(timed: Backend) -> None:
    asked, said = item(), item("bye", role="assistant")
    stored = chained([], [asked], [said])
    await timed.store.put(stored)
    timed.clock.advance(TTL - 1)
    assert await timed.store.get_item(said["id"], "a") == said
    timed.clock.advance(1)
    assert await timed.store.get(stored.id, "a") is None
    assert await timed.store.get_item(asked["id"], "a") is None
    assert await timed.store.get_item(said["id"], "a") is None


async def test_an_expired_owner_gives_its_item_ids_up(timed: Backend) -> None:
    """Until purged an expired entry still holds its key: a new response reusing the id takes it over."""
    asked = item("old")
    await timed.store.put(chained([], [asked], []))
    timed.clock.advance(TTL)
    reused = {**asked, "content": [{"type": "input_text", "text": "new"}]}
    await timed.store.put(chained([], [reused], []))
    assert await timed.store.get_item(asked["id"], "a") == reused


async def test_redis_items_expire_at_the_same_instant_as_their_response() -> None:
    """Redis expires keys by its own clock, which a test cannot move: the item keys must carry the very
    expiry of the response key (set by one script from one reading of the server's clock), so they
    disappear together."""
    need("redis")
    store, redis = RedisStore(REDIS_URL, ttl_seconds=TTL), Redis.from_url(REDIS_URL)
    asked, said = item(), item("bye", role="assistant")
    stored = chained([], [asked], [said])
    await store.put(stored)
    try:
        expiry = await redis.pexpiretime(response_key("a", stored.id))
        assert 0 < await redis.pttl(response_key("a", stored.id)) <= TTL * 1000
        for one in (asked, said):
            assert await redis.pexpiretime(item_key("a", one["id"])) == expiry
    finally:
        await store.delete(stored.id, "a")
        await store.close()
        await redis.aclose()
