"""Background responses: run a request inside the gateway while the client polls.

The run belongs to the replica that started it and survives the client going away. While it runs, a
keeper task appends its new events to the store (so a stream opened on any replica follows it live),
renews its lease and watches for a cancel written by any replica; if the replica dies, the lease lapses
and the next read marks the response failed instead of leaving it `in_progress` forever
(`expire_if_abandoned`). Publishing only appends: each event is written once while the run goes, and the
whole stream once more with the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from gateway.store.base import ACTIVE, ResponseStore, StoredResponse

logger = logging.getLogger(__name__)
ABANDONED = "The gateway replica running this response stopped before it finished."
PUBLISH_SECONDS = 0.25
"""How often a run publishes new events to the store, and a stream on another replica looks for them."""
STORE_SECONDS = 5.0
"""Longest wait on one store call of a run: a hung store must not hold its result forever."""


class EventLog:
    """One background run's wire events: followed live by its streams, kept for resuming them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._changed = asyncio.Condition()

    async def extend(self, events: list[dict[str, Any]]) -> None:
        async with self._changed:
            self.events.extend(events)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    def _has_news(self, index: int) -> bool:
        return len(self.events) > index or self.closed

    async def follow(self, after: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Every event with `sequence_number > after`, as they come, until the run ends."""
        index = after + 1
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._has_news, index))
                batch, index, closed = self.events[index:], len(self.events), self.closed
            if batch:
                yield batch
            if closed:
                return


class BackgroundRuns:
    def __init__(self, store: ResponseStore, lease_seconds: float) -> None:
        self._store = store
        self._lease = lease_seconds
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._logs: dict[str, EventLog] = {}

    def lease_until(self) -> float:
        return time.time() + self._lease

    def start(
        self, record: StoredResponse, work: Callable[[], Awaitable[dict[str, Any]]], log: EventLog
    ) -> None:
        """Run `work` (which returns the final Response object, writing its events to `log`) and store
        the result with the events."""
        task = asyncio.create_task(self._run(record, work, log), name=f"background {record.id}")
        self._tasks[record.id] = task
        self._logs[record.id] = log

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(record.id, None)
            self._logs.pop(record.id, None)

        task.add_done_callback(forget)

    def log(self, response_id: str) -> EventLog | None:
        """The live log of a run in this process, if there is one."""
        return self._logs.get(response_id)

    def cancel_local(self, response_id: str) -> None:
        task = self._tasks.get(response_id)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(
        self, record: StoredResponse, work: Callable[[], Awaitable[dict[str, Any]]], log: EventLog
    ) -> None:
        running = replace(
            record,
            response={**record.response, "status": "in_progress"},
            lease_until=self.lease_until(),
            events=None,
        )
        started = False
        try:
            started = await asyncio.wait_for(self._store.put(running, if_status_in=ACTIVE), STORE_SECONDS)
            if not started:
                return  # cancelled or deleted before it started
        except Exception as exc:  # run anyway: the keeper stores it once the store answers again
            logger.warning("background response %s: start not stored (%s)", record.id, type(exc).__name__)
        done = asyncio.Event()
        keeper = asyncio.create_task(self._keep(running, log, asyncio.current_task(), done, started))
        try:
            final = await work()
        except asyncio.CancelledError:
            return  # cancelled: the canceller has stored the `cancelled` state
        except Exception:
            logger.exception("background response %s failed", record.id)
            final = {
                **running.response,
                "status": "failed",
                "error": {"code": "server_error", "message": "The gateway failed while running it."},
            }
        finally:
            done.set()
            await log.close()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper  # it stops between writes, so no publication lands after the result
        result = replace(record, response=final, lease_until=None, events=log.events)
        try:  # not over a cancel or delete made meanwhile through any replica
            await asyncio.wait_for(self._store.put(result, if_status_in=ACTIVE), STORE_SECONDS)
        except Exception as exc:  # the lease will lapse and readers will see the run failed
            logger.warning("background response %s: result not stored (%s)", record.id, type(exc).__name__)

    async def _keep(
        self,
        record: StoredResponse,
        log: EventLog,
        task: asyncio.Task[Any] | None,
        done: asyncio.Event,
        started: bool,
    ) -> None:
        """While the run goes: append its new events to the store (for streams on other replicas) and
        renew its lease (`record`, without events, every third of it; at once if the run's start was not
        stored), only while it is still active there: a cancel or delete made through any replica stops
        the run. A store that fails one pass is tried again at the next, from where it stopped."""
        published = 0
        renewed = time.monotonic() if started else -math.inf
        while True:
            try:
                await asyncio.wait_for(done.wait(), PUBLISH_SECONDS)
                return
            except TimeoutError:
                pass
            try:
                count = len(log.events)
                if count > published:
                    events = log.events[published:count]
                    append = self._store.append_events(record.id, record.team, published, events)
                    if not await asyncio.wait_for(append, STORE_SECONDS):
                        break
                    published = count
                if time.monotonic() - renewed >= self._lease / 3:
                    renew = self._store.put(
                        replace(record, lease_until=self.lease_until()), if_status_in=ACTIVE
                    )
                    if not await asyncio.wait_for(renew, STORE_SECONDS):
                        break
                    renewed = time.monotonic()
            except Exception as exc:
                logger.warning("background response %s: not published (%s)", record.id, type(exc).__name__)
        if task is not None:
            task.cancel()  # cancelled (or deleted) through another replica


async def follow_stored(
    store: ResponseStore, record: StoredResponse, after: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """The events after `after` of a run on another replica (or one that has finished): while it runs,
    those its runner publishes, as they come; once it has ended, the rest from its stored stream. A run
    that ends without its stream in the store (cancelled, deleted, or its replica died) ends the stream
    there. The record is read again only when no new events came: events coming say it still runs."""
    index = after + 1
    while record.response["status"] in ACTIVE:
        batch = await store.get_events(record.id, record.team, index - 1)
        if batch:
            yield batch
            index += len(batch)
        await asyncio.sleep(PUBLISH_SECONDS)
        if not batch:
            current = await store.get(record.id, record.team)
            if current is None:
                return
            record = await expire_if_abandoned(store, current)
    events = record.events or []
    if len(events) > index:
        yield events[index:]


async def expire_if_abandoned(store: ResponseStore, record: StoredResponse) -> StoredResponse:
    """A background response whose lease lapsed has lost its runner: it is failed, not in progress."""
    if (
        record.response.get("status") not in ACTIVE
        or record.lease_until is None
        or record.lease_until > time.time()
    ):
        return record
    failed = StoredResponse(
        record.id,
        record.team,
        {**record.response, "status": "failed", "error": {"code": "server_error", "message": ABANDONED}},
        record.input_items,
    )
    if await store.put(failed, if_status_in=ACTIVE):
        return failed
    return await store.get(record.id, record.team) or record  # it moved on meanwhile: show what it is now
