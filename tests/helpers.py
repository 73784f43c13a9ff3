"""Deterministic encoder plumbing shared by unit tests."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from config.models import ModelDefaults
from gateway.encoder import ResponsesEncoder
from gateway.intake import parse_body, response_skeleton, to_canonical
from gateway.sealing import Sealer
from schemas.canonical import Request
from schemas.canonical_events import CanonicalEvent
from schemas.responses_request import CreateResponse


def reachable(port: int) -> bool:
    """Whether a service listens on 127.0.0.1:`port` (tests of shared stores skip, saying so, if not)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def counter_ids() -> Callable[[str], str]:
    """`msg_1`, `fc_2`, … : predictable ids so expected events can be written out exactly."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


SEALER = Sealer("unit-test-reasoning-key")
IDS = counter_ids()


def canonical(body: dict[str, Any], defaults: ModelDefaults | None = None) -> Request:
    """A wire request body (model defaults to `public`) → the canonical request adapters see."""
    wire = parse_body(orjson.dumps({"model": "public", **body}))
    return to_canonical(wire, "up-model", defaults or ModelDefaults(), SEALER)


def make_encoder(body: dict[str, Any] | None = None) -> ResponsesEncoder:
    wire = CreateResponse.model_validate(body or {"model": "test-model", "input": "hi"})
    request = to_canonical(wire, "upstream-model", ModelDefaults(), SEALER)
    skeleton = response_skeleton(wire, request, "resp_test", 1700000000)
    return ResponsesEncoder(skeleton, counter_ids(), lambda: 1700000001, SEALER.seal)


def encode_all(events: Iterable[CanonicalEvent], body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run canonical events through a fresh encoder to the end, as the stream driver does."""
    encoder = make_encoder(body)
    out = encoder.start()
    for event in events:
        out += encoder.feed(event)
        if encoder.finished:
            return out
    return out + encoder.finish()


def brief(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (type, output_index, content/summary index, delta-or-text), for exact comparisons."""
    rows = []
    for event in events:
        detail = event.get("delta", event.get("text", event.get("arguments", event.get("refusal"))))
        index = event.get("content_index", event.get("summary_index"))
        rows.append((event["type"], event.get("output_index"), index, detail))
    return rows


def socket_turn(conn: Any) -> list[dict[str, Any]]:
    """One turn's events from an SDK `responses.connect()` connection, up to and including its terminal
    event (or its error frame)."""
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in (
        "response.completed",
        "response.failed",
        "response.incomplete",
        "error",
    ):
        events.append(conn.recv().model_dump(mode="json", exclude_unset=True))
    return events
