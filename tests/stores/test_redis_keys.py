"""Redis keys name one (team, id) pair each: clients choose ids (`previous_response_id`, URL paths, item
ids) and team names may contain ':', so no id one team can send may reach another team's key."""

from __future__ import annotations

import itertools
from dataclasses import replace

from gateway.store.redis import RedisStore, events_key, item_key, response_key
from tests.stores.support import REDIS_URL, TTL, chained, item, need


def test_no_two_team_and_id_pairs_share_a_key() -> None:
    pairs = [
        (team, key)
        for team, key in itertools.product(
            ["", "a", "acme", "acme:x", "x", "4:acme", "1", "1:a", ":"], repeat=2
        )
        if team or key
    ]
    assert len({response_key(team, key) for team, key in pairs}) == len(pairs)
    assert len({item_key(team, key) for team, key in pairs}) == len(pairs)
    assert len({events_key(team, key) for team, key in pairs}) == len(pairs)
    kinds = [response_key, item_key, events_key]
    assert len({kind(team, key) for kind in kinds for team, key in pairs}) == len(kinds) * len(pairs)


async def test_a_team_cannot_reach_a_colon_named_teams_records_through_crafted_ids() -> None:
    need("redis")
    store = RedisStore(REDIS_URL, ttl_seconds=TTL)
    asked, said = item(), item("secret", role="assistant")
    theirs = chained([], [asked], [said], team="acme:x")
    await store.put(theirs)
    try:
        assert await store.get(f"x:{theirs.id}", "acme") is None
        assert await store.get_item(f"x:{asked['id']}", "acme") is None
        assert await store.get_item(f"x:{said['id']}", "acme") is None
        assert await store.delete(f"x:{theirs.id}", "acme") is False
        assert await store.get(theirs.id, "acme:x") == theirs
        assert await store.get_item(said["id"], "acme:x") == said
    finally:
        await store.delete(theirs.id, "acme:x")
        await store.close()


async def test_the_other_way_round_too() -> None:
    """Team "acme:x" asking for what team "acme" stored under an id starting "x:" finds nothing either."""
    need("redis")
    store = RedisStore(REDIS_URL, ttl_seconds=TTL)
    asked = {**item(), "id": f"x:{item()['id']}"}
    plain = chained([], [asked], [], team="acme")
    ours = replace(plain, id=f"x:{plain.id}", response={**plain.response, "id": f"x:{plain.id}"})
    await store.put(ours)
    try:
        assert await store.get(ours.id.removeprefix("x:"), "acme:x") is None
        assert await store.get_item(asked["id"].removeprefix("x:"), "acme:x") is None
        assert await store.delete(ours.id.removeprefix("x:"), "acme:x") is False
        assert await store.get(ours.id, "acme") == ours
        assert await store.get_item(asked["id"], "acme") == asked
    finally:
        await store.delete(ours.id, "acme")
        await store.close()
