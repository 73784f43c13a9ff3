"""Background responses: queued at once, polled to the end, cancellable, failed when their replica dies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from gateway.app import create_app
from gateway.store.base import StoredResponse
from gateway.store.sqlite import SQLiteStore
from tests.conftest import API_KEY, UPSTREAM_KEY, gateway_settings
from tests.fakes.chat_completions import FakeChat, create_fake_chat
from tests.fakes.server import serve
from tests.helpers import reachable
from tests.invariants import check_stream, parse_sse


@pytest.fixture
def sdk(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v5", api_key=API_KEY, max_retries=0) as client:
        yield client


def poll(sdk: openai.OpenAI, response_id: str, until: tuple[str, ...]) -> Response:
    deadline = time.monotonic() + 10
    while True:
        response = sdk.responses.retrieve(response_id)
        if response.status in until or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_background_response_is_queued_then_completed(sdk: openai.OpenAI, fake: FakeChat) -> None:
    queued = sdk.responses.create(model="fake/fake-text", input="Say hello", background=True)
    assert queued.status == "queued" and queued.background is True and queued.output == []
    done = poll(sdk, queued.id, ("completed", "failed"))
    assert done.status == "completed" and done.output_text == "Hello there, friend!"
    assert done.id == queued.id and done.usage is not None


def test_upstream_errors_end_a_background_response_failed(sdk: openai.OpenAI, fake: FakeChat) -> None:
    queued = sdk.responses.create(model="fake/fake-error-400", input="x", background=True)
    failed = poll(sdk, queued.id, ("failed", "completed"))
    assert failed.status == "failed" and failed.error is not None
    assert "maximum context length" in failed.error.message


async def test_cancel_stops_the_upstream_request(sdk: openai.OpenAI, fake: FakeChat) -> None:
    queued = sdk.responses.create(model="fake/fake-hang-midstream", input="x", background=True)
    poll(sdk, queued.id, ("in_progress",))
    cancelled = sdk.responses.cancel(queued.id)
    assert cancelled.status == "cancelled"
    assert await fake.until_disconnects(1)
    assert sdk.responses.retrieve(queued.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        sdk.responses.cancel(sdk.responses.create(model="fake/fake-text", input="x").id)


def test_background_needs_store(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="fake/fake-text", input="x", background=True, store=False)
    assert info.value.param == "store"


def events_of(stream: Any) -> list[dict[str, Any]]:
    return [event.model_dump(mode="json", exclude_unset=True) for event in stream]


def test_background_stream_is_queued_and_can_be_resumed(sdk: openai.OpenAI, fake: FakeChat) -> None:
    events = events_of(
        sdk.responses.create(model="fake/fake-text", input="Say hello", background=True, stream=True)
    )
    final = check_stream(events)
    assert [e["type"] for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0]["response"]["status"] == "queued" and final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "Hello there, friend!"
    stored = poll(sdk, final["id"], ("completed",))
    assert stored.output_text == "Hello there, friend!"
    resumed = events_of(sdk.responses.retrieve(final["id"], stream=True, starting_after=4))
    assert resumed == events[5:]
    assert events_of(sdk.responses.retrieve(final["id"], stream=True)) == events


def test_a_background_stream_outlives_its_client(gateway: str, sdk: openai.OpenAI, fake: FakeChat) -> None:
    body = {"model": "fake/fake-text", "input": "Say hello", "background": True, "stream": True}
    with (
        httpx.Client(base_url=gateway, timeout=10) as http,
        http.stream(
            "POST", "/v5/responses", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as reply,
    ):
        first = next(reply.iter_raw())
    response_id = parse_sse(first)[0]["response"]["id"]
    assert poll(sdk, response_id, ("completed",)).output_text == "Hello there, friend!"


def test_only_background_responses_stream_again(sdk: openai.OpenAI, fake: FakeChat) -> None:
    plain = sdk.responses.create(model="fake/fake-text", input="x")
    with pytest.raises(openai.BadRequestError):
        events_of(sdk.responses.retrieve(plain.id, stream=True))


async def test_a_run_whose_replica_died_ends_failed(
    tmp_path: Path, fake_upstream: tuple[FakeChat, str]
) -> None:
    """A record still `in_progress` whose lease lapsed (its replica is gone) reads as failed."""
    path = str(tmp_path / "store.sqlite3")
    store = SQLiteStore(path)
    orphan = {
        "id": "resp_orphan",
        "object": "response",
        "status": "in_progress",
        "background": True,
        "output": [],
    }
    await store.put(StoredResponse("resp_orphan", "test", orphan, [], lease_until=time.time() - 1))
    await store.close()
    settings = gateway_settings(fake_upstream[1], store={"kind": "sqlite", "path": path})
    with (
        serve(create_app(settings)) as base_url,
        openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        response = client.responses.retrieve("resp_orphan")
    assert response.status == "failed" and response.error is not None
    assert response.error.message == "The gateway replica running this response stopped before it finished."


async def test_a_cancel_through_another_replica_reaches_the_runner(
    fake_upstream: tuple[FakeChat, str],
) -> None:
    """Replica one runs it; replica two cancels it in the shared store; one's heartbeat stops the run."""
    if not reachable(6379):
        pytest.skip("no Redis on 127.0.0.1:6379")
    fake = fake_upstream[0]
    fake.reset()
    settings = gateway_settings(fake_upstream[1], store={"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
    settings = settings.model_copy(
        update={"server": settings.server.model_copy(update={"background_lease_seconds": 0.3})}
    )
    with serve(create_app(settings)) as one, serve(create_app(settings)) as two:
        with openai.OpenAI(base_url=f"{one}/v5", api_key=API_KEY, max_retries=0) as first:
            queued = first.responses.create(model="fake/fake-hang-midstream", input="x", background=True)
            poll(first, queued.id, ("in_progress",))
        with openai.OpenAI(base_url=f"{two}/v5", api_key=API_KEY, max_retries=0) as second:
            assert second.responses.cancel(queued.id).status == "cancelled"
            assert await fake.until_disconnects(1)
            assert second.responses.retrieve(queued.id).status == "cancelled"


def test_a_request_the_upstream_cannot_carry_is_refused_before_it_is_queued(
    sdk: openai.OpenAI, fake: FakeChat
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(model="fake/fake-text", input="x", background=True, service_tier="flex")
    assert info.value.param == "service_tier"
    assert fake.requests == []


def test_a_stream_on_another_replica_follows_the_run_live(fake_upstream: tuple[FakeChat, str]) -> None:
    """Replica one runs it; a stream opened on replica two gets its events as one publishes them to the
    shared store, and ends when the run is cancelled."""
    if not reachable(6379):
        pytest.skip("no Redis on 127.0.0.1:6379")
    fake = fake_upstream[0]
    fake.reset()
    settings = gateway_settings(fake_upstream[1], store={"kind": "redis", "url": "redis://127.0.0.1:6379/0"})
    with serve(create_app(settings)) as one, serve(create_app(settings)) as two:
        with openai.OpenAI(base_url=f"{one}/v5", api_key=API_KEY, max_retries=0) as first:
            queued = first.responses.create(model="fake/fake-hang-midstream", input="x", background=True)
        with openai.OpenAI(base_url=f"{two}/v5", api_key=API_KEY, max_retries=0) as second:
            events: list[dict[str, Any]] = []
            stream = second.responses.retrieve(queued.id, stream=True, starting_after=1)
            for event in stream:  # the upstream hangs after two deltas: these can only come live
                events.append(event.model_dump(mode="json", exclude_unset=True))
                if len(events) == 5:
                    assert second.responses.cancel(queued.id).status == "cancelled"
    assert [(e["type"], e["sequence_number"]) for e in events] == [
        ("response.in_progress", 2),
        ("response.output_item.added", 3),
        ("response.content_part.added", 4),
        ("response.output_text.delta", 5),
        ("response.output_text.delta", 6),
    ]
    assert "".join(e["delta"] for e in events[3:]) == "Hello there"
    assert fake.wait_for_disconnects(1)  # the runner on replica one saw the cancel and let go upstream


def test_a_background_response_reports_the_fields_it_dropped(sdk: openai.OpenAI) -> None:
    reply = sdk.responses.with_raw_response.create(
        model="gemini/fake-text", input="x", user="u1", background=True
    )
    assert reply.headers["x-rosetta-dropped-params"] == "user"
    assert poll(sdk, reply.parse().id, ("completed",)).status == "completed"


def _settle(app: Any, response_id: str) -> None:
    """Until the run of `response_id` in `app` has ended (its result written, or withheld)."""
    deadline = time.monotonic() + 10
    while app.state.gateway.runs.log(response_id) is not None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_delete_during_a_run_is_not_undone_when_it_ends(fake_upstream: tuple[FakeChat, str]) -> None:
    fake_upstream[0].reset()
    app = create_app(gateway_settings(fake_upstream[1]))
    with (
        serve(app) as base_url,
        openai.OpenAI(base_url=f"{base_url}/v5", api_key=API_KEY, max_retries=0) as client,
    ):
        queued = client.responses.create(model="fake/fake-hang-midstream", input="x", background=True)
        poll(client, queued.id, ("in_progress",))
        client.responses.delete(queued.id)
        _settle(app, queued.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(queued.id)
    assert fake_upstream[0].wait_for_disconnects(1)  # the run stopped, and let go of the upstream


def test_a_store_that_fails_while_a_run_publishes_does_not_lose_its_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = create_fake_chat(api_key=UPSTREAM_KEY, write_delay=0.01)  # a stream of a second or two
    with serve(slow) as upstream_url:
        app = create_app(gateway_settings(f"{upstream_url}/v1"))
        append_events = app.state.gateway.store.append_events
        failures: list[str] = []
        starts: list[int] = []

        async def flaky_append(response_id: str, team: str, start: int, events: list[Any]) -> bool:
            starts.append(start)
            if not failures:  # the first publication
                failures.append(response_id)
                raise ConnectionError("store blip")
            return bool(await append_events(response_id, team, start, events))

        monkeypatch.setattr(app.state.gateway.store, "append_events", flaky_append)
        with (
            serve(app) as base_url,
            openai.OpenAI(base_url=f"{base_url}/v5", api_key=API_KEY, max_retries=0) as client,
        ):
            queued = client.responses.create(model="fake/fake-text", input="x", background=True)
            final = poll(client, queued.id, ("completed", "failed"))
            replayed = events_of(client.responses.retrieve(queued.id, stream=True))
    assert failures == [queued.id]
    assert starts[:2] == [0, 0]  # the next pass publishes again from where the failed one started
    assert final.status == "completed" and final.output_text == "Hello there, friend!"
    assert check_stream(replayed)["status"] == "completed"


def test_a_publication_writes_only_the_new_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """While it runs, each publication appends the events since the one before (never the stream again)
    and each lease renewal puts the record without events; the result is put once, with all of them."""
    slow = create_fake_chat(api_key=UPSTREAM_KEY, write_delay=0.01)  # a stream of about two seconds
    with serve(slow) as upstream_url:
        settings = gateway_settings(f"{upstream_url}/v1")
        server = settings.server.model_copy(update={"background_lease_seconds": 0.6})  # renewed every 0.2 s
        app = create_app(settings.model_copy(update={"server": server}))
        store = app.state.gateway.store
        put, append_events = store.put, store.append_events
        appends: list[tuple[int, list[Any]]] = []
        puts: list[StoredResponse] = []

        async def recording_append(response_id: str, team: str, start: int, events: list[Any]) -> bool:
            appends.append((start, list(events)))
            return bool(await append_events(response_id, team, start, events))

        async def recording_put(
            record: StoredResponse, *, if_status_in: tuple[str, ...] | None = None
        ) -> bool:
            puts.append(record)
            return bool(await put(record, if_status_in=if_status_in))

        monkeypatch.setattr(store, "append_events", recording_append)
        monkeypatch.setattr(store, "put", recording_put)
        with (
            serve(app) as base_url,
            openai.OpenAI(base_url=f"{base_url}/v5", api_key=API_KEY, max_retries=0) as client,
        ):
            queued = client.responses.create(model="fake/fake-text", input="x", background=True)
            assert poll(client, queued.id, ("completed", "failed")).status == "completed"
            _settle(app, queued.id)
            replayed = events_of(client.responses.retrieve(queued.id, stream=True))
    assert len(appends) >= 2
    assert all(events for _, events in appends)
    starts = [start for start, _ in appends]
    assert starts == [sum(len(events) for _, events in appends[:i]) for i in range(len(appends))]
    published = [event for _, events in appends for event in events]
    queued_put, *running_puts, result = puts
    assert queued_put.response["status"] == "queued"
    assert len(running_puts) >= 2  # the run's start, then lease renewals
    assert all(p.events is None and p.lease_until is not None for p in running_puts)
    assert all(p.response["status"] == "in_progress" for p in running_puts)
    assert result.lease_until is None and result.response["status"] == "completed"
    assert result.events is not None and result.events[: len(published)] == published
    assert replayed == result.events


def test_a_stream_on_another_replica_follows_the_run_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica two follows the run on replica one as one publishes it and, once it has finished, takes the
    rest from the stored stream: every event once, in order, to the terminal one."""
    slow = create_fake_chat(api_key=UPSTREAM_KEY, write_delay=0.01)  # a stream of about two seconds
    path = str(tmp_path / "store.sqlite3")
    with serve(slow) as upstream_url:
        settings = gateway_settings(f"{upstream_url}/v1", store={"kind": "sqlite", "path": path})
        one, two = create_app(settings), create_app(settings)
        get_events = two.state.gateway.store.get_events
        live: list[int] = []

        async def counting_get_events(response_id: str, team: str, after: int) -> list[Any]:
            events: list[Any] = await get_events(response_id, team, after)
            live.append(len(events))
            return events

        monkeypatch.setattr(two.state.gateway.store, "get_events", counting_get_events)
        with (
            serve(one) as first_url,
            serve(two) as second_url,
            openai.OpenAI(base_url=f"{first_url}/v5", api_key=API_KEY, max_retries=0) as first,
            openai.OpenAI(base_url=f"{second_url}/v5", api_key=API_KEY, max_retries=0) as second,
        ):
            queued = first.responses.create(model="fake/fake-text", input="x", background=True)
            followed = events_of(second.responses.retrieve(queued.id, stream=True, starting_after=0))
            whole = events_of(first.responses.retrieve(queued.id, stream=True))
    assert any(live)  # some came from the run's publications, while it ran
    assert followed == whole[1:]
    assert [event["sequence_number"] for event in followed] == list(range(1, len(whole)))
    assert check_stream(whole)["output"][0]["content"][0]["text"] == "Hello there, friend!"


async def test_a_cancel_racing_the_end_of_a_run_leaves_the_result(
    tmp_path: Path, fake_upstream: tuple[FakeChat, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel read the response while it still ran; it finished before the cancel was written."""
    running = {
        "id": "resp_race",
        "object": "response",
        "status": "in_progress",
        "background": True,
        "output": [],
    }
    done = {**running, "status": "completed"}
    path = str(tmp_path / "store.sqlite3")
    store = SQLiteStore(path)
    await store.put(StoredResponse("resp_race", "test", done, []))
    await store.close()
    app = create_app(gateway_settings(fake_upstream[1], store={"kind": "sqlite", "path": path}))
    get = app.state.gateway.store.get
    reads: list[str] = []

    async def stale_first_read(response_id: str, team: str) -> StoredResponse | None:
        reads.append(response_id)
        if len(reads) == 1:
            return StoredResponse(response_id, team, running, [], lease_until=time.time() + 60)
        return await get(response_id, team)  # type: ignore[no-any-return]

    monkeypatch.setattr(app.state.gateway.store, "get", stale_first_read)
    with (
        serve(app) as base_url,
        openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        assert client.responses.cancel("resp_race").status == "completed"
        assert client.responses.retrieve("resp_race").status == "completed"
