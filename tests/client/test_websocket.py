"""The Responses WebSocket transport, driven by the official `openai` SDK's `responses.connect()`.

Each turn's events must be exactly what an SSE stream carries (checked by the stream invariants); the
connection remembers its own responses (store:false included) for `previous_response_id`, forgets the one
a failed turn continued, and every failure before a response exists is one `error` frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from gateway.app import create_app
from gateway.websocket import MAX_LANES, RecentResponses
from tests.conftest import API_KEY, MAX_BODY, OTHER_TEAM_KEY, gateway_settings
from tests.fakes.chat_completions import FakeChat
from tests.fakes.server import serve
from tests.helpers import socket_turn
from tests.invariants import check_stream

Connection = Any


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0) as client:
        yield client


def completed(conn: Connection) -> dict[str, Any]:
    events = socket_turn(conn)
    response = check_stream(events)
    assert response["status"] == "completed", events[-1]
    return response


def error_of(conn: Connection) -> dict[str, Any]:
    (frame,) = socket_turn(conn)
    assert frame["type"] == "error"
    return frame


def test_a_turn_streams_the_same_events_as_sse(client: openai.OpenAI, fake: FakeChat) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="Say hello", store=False)
        events = socket_turn(conn)
    response = check_stream(events)
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["text"] == "Hello there, friend!"
    assert fake.last_request.body["stream"] is True
    sse = list(client.responses.create(model="m-text", input="Say hello", store=False, stream=True))
    assert [e["type"] for e in events] == [e.type for e in sse]


def test_store_false_continuation_on_the_connection_sends_the_whole_chain(
    client: openai.OpenAI, fake: FakeChat
) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-echo", input="Remember cobalt.", store=False, instructions="Be brief.")
        first = completed(conn)
        conn.response.create(
            model="m-echo", input="Which word?", store=False, previous_response_id=first["id"]
        )
        second = completed(conn)
    said = first["output"][0]["content"][0]["text"]
    messages = fake.last_request.body["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Remember cobalt."),
        ("assistant", said),
        ("user", "Which word?"),
    ]
    assert second["previous_response_id"] == first["id"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first["id"])  # store:false: only the connection knew it


def test_a_failed_continuation_forgets_the_response_it_continued(client: openai.OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="Remember ember.", store=False)
        first = completed(conn)
        orphan: Any = [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]
        conn.response.create(model="m-text", input=orphan, store=False, previous_response_id=first["id"])
        failed = error_of(conn)
        conn.response.create(model="m-text", input="Again?", store=False, previous_response_id=first["id"])
        retry = error_of(conn)
    assert failed["status"] == 400
    assert failed["error"]["type"] == "invalid_request_error"
    assert "call_missing" in failed["error"]["message"]
    assert retry["status"] == 404
    assert retry["error"]["code"] == "previous_response_not_found"
    assert retry["error"]["param"] == "previous_response_id"


def test_another_connection_cannot_continue_a_store_false_response(client: openai.OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="Remember copper.", store=False)
        first = completed(conn)
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="Go on", store=False, previous_response_id=first["id"])
        missing = error_of(conn)
        conn.response.create(model="m-text", input="Start again", store=False)
        recovered = completed(conn)
    assert missing["error"]["code"] == "previous_response_not_found"
    assert recovered["status"] == "completed"


def test_stored_responses_chain_across_transports(client: openai.OpenAI, fake: FakeChat) -> None:
    over_http = client.responses.create(model="m-echo", input="Remember slate.")
    with client.responses.connect() as conn:
        conn.response.create(model="m-echo", input="Which word?", previous_response_id=over_http.id)
        over_socket = completed(conn)
    assert [m["content"] for m in fake.last_request.body["messages"]] == [
        "Remember slate.",
        over_http.output_text,
        "Which word?",
    ]
    stored = client.responses.retrieve(over_socket["id"])  # store defaults to true over the socket too
    assert stored.status == "completed"
    assert stored.output_text == over_socket["output"][0]["content"][0]["text"]


def test_generate_false_prepares_a_response_to_chain_on_without_calling_upstream(
    client: openai.OpenAI, fake: FakeChat
) -> None:
    with client.responses.connect() as conn:
        conn.response.create(
            model="m-echo", input="Context: the word is granite.", store=False, generate=False
        )
        prepared = completed(conn)
        assert fake.requests == []
        conn.response.create(
            model="m-echo", input="Which word?", store=False, previous_response_id=prepared["id"]
        )
        completed(conn)
    assert prepared["output"] == []
    assert [m["content"] for m in fake.last_request.body["messages"]] == [
        "Context: the word is granite.",
        "Which word?",
    ]


def test_lanes_echo_their_stream_id(client: openai.OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="one", store=False, stream_id="lane-a")
        conn.response.create(model="m-text", input="two", store=False, stream_id="lane-b")
        lanes: dict[str, list[dict[str, Any]]] = {"lane-a": [], "lane-b": []}
        finished = 0
        while finished < 2:
            event = conn.recv().model_dump(mode="json", exclude_unset=True)
            lanes[event.pop("stream_id")].append(event)
            finished += event["type"] == "response.completed"
    first, second = (check_stream(events) for events in lanes.values())
    assert first["id"] != second["id"]


@pytest.mark.parametrize(
    ("message", "param", "code"),  # each as POST /v1/responses would answer it
    [
        (
            {"type": "response.create", "model": "m-text", "input": "x", "background": True},
            "background",
            None,
        ),
        ({"type": "response.create", "model": "m-text", "input": "x", "stream": False}, "stream", None),
        ({"type": "response.create", "model": "m-text", "input": "x", "temprature": 1}, "temprature", None),
        ({"type": "response.steer", "previous_response_id": "resp_1", "input": []}, "type", "invalid_value"),
        (
            {"type": "response.create", "model": "m-text", "input": "x", "stream_id": 7},
            "stream_id",
            "invalid_type",
        ),
        ({"type": "response.create", "model": "nope", "input": "x"}, None, "model_not_found"),
    ],
)
def test_a_bad_message_is_one_error_frame_and_the_connection_goes_on(
    gateway: str, message: dict[str, Any], param: str | None, code: str | None
) -> None:
    with connect(f"ws://{gateway.removeprefix('http://')}/v1/responses", additional_headers=_auth()) as ws:
        ws.send(orjson.dumps(message).decode())
        frame = orjson.loads(ws.recv())
        ws.send("{not json")
        broken = orjson.loads(ws.recv())
        ws.send(orjson.dumps({"type": "response.create", "model": "m-text", "input": "hi"}).decode())
        after = orjson.loads(ws.recv())
    assert frame["type"] == "error"
    assert frame["status"] in (400, 404)
    assert frame["error"]["param"] == param
    if code is not None:
        assert frame["error"]["code"] == code
    assert (broken["status"], broken["error"]["code"]) == (400, "invalid_json")
    assert after["type"] == "response.created"


def test_a_bad_key_is_refused_with_a_401_in_openai_shape(gateway: str) -> None:
    url = f"ws://{gateway.removeprefix('http://')}/v1/responses"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"Authorization": "Bearer wrong"})
    assert refused.value.response.status_code == 401
    assert orjson.loads(refused.value.response.body or b"")["error"]["code"] == "invalid_api_key"


def test_another_team_cannot_continue_a_stored_response(client: openai.OpenAI, gateway: str) -> None:
    stored = client.responses.create(model="m-text", input="Remember quartz.")
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=OTHER_TEAM_KEY, max_retries=0) as other:
        with other.responses.connect() as conn:
            conn.response.create(model="m-text", input="Go on", previous_response_id=stored.id)
            frame = error_of(conn)
    assert frame["error"]["code"] == "previous_response_not_found"


def test_leaving_mid_turn_cancels_the_upstream_request(gateway: str, fake: FakeChat) -> None:
    with connect(f"ws://{gateway.removeprefix('http://')}/v5/responses", additional_headers=_auth()) as ws:
        hang = {"type": "response.create", "model": "fake/fake-hang-midstream", "input": "x"}
        ws.send(orjson.dumps(hang).decode())
        assert orjson.loads(ws.recv())["type"] == "response.created"
    assert fake.wait_for_disconnects(1)


def _limited(fake_upstream: tuple[FakeChat, str], seconds: float) -> Any:
    """A gateway whose WebSocket connections live `seconds`."""
    settings = gateway_settings(fake_upstream[1])
    server = settings.server.model_copy(update={"websocket_max_seconds": seconds})
    return serve(create_app(settings.model_copy(update={"server": server})))


def test_the_connection_ends_at_its_time_limit(fake_upstream: tuple[FakeChat, str]) -> None:
    with _limited(fake_upstream, 0.2) as base_url:
        with connect(
            f"ws://{base_url.removeprefix('http://')}/v1/responses", additional_headers=_auth()
        ) as ws:
            frame = orjson.loads(ws.recv())
            with pytest.raises(ConnectionClosedOK):
                ws.recv()
    assert frame["error"]["code"] == "websocket_connection_limit_reached"


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def test_a_gateway_bug_is_a_500_frame_and_the_lane_goes_on(
    fake_upstream: tuple[FakeChat, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(gateway_settings(fake_upstream[1]))
    begin = app.state.gateway.begin
    calls = iter([RuntimeError("bug"), None])

    def flaky_begin(call: Any) -> Any:
        failure = next(calls)
        if failure is not None:
            raise failure
        return begin(call)

    monkeypatch.setattr(app.state.gateway, "begin", flaky_begin)
    with serve(app) as base_url:
        with connect(
            f"ws://{base_url.removeprefix('http://')}/v1/responses", additional_headers=_auth()
        ) as ws:
            request = orjson.dumps({"type": "response.create", "model": "m-text", "input": "x"}).decode()
            ws.send(request)
            bug = orjson.loads(ws.recv())
            ws.send(request)
            after = orjson.loads(ws.recv())
    assert bug == {
        "type": "error",
        "status": 500,
        "error": {
            "message": "The gateway hit an internal error.",
            "type": "server_error",
            "param": None,
            "code": None,
        },
    }
    assert after["type"] == "response.created"


def test_a_field_http_would_drop_and_report_is_refused_over_a_socket(gateway: str) -> None:
    """Over HTTP Gemini's missing `user` is dropped and named in `x-rosetta-dropped-params`; a socket has
    no header to name it in, so the turn is refused rather than the field lost silently."""
    with connect(f"ws://{gateway.removeprefix('http://')}/v5/responses", additional_headers=_auth()) as ws:
        ws.send(
            orjson.dumps(
                {"type": "response.create", "model": "gemini/fake-text", "input": "x", "user": "u1"}
            ).decode()
        )
        frame = orjson.loads(ws.recv())
    assert frame["status"] == 400
    assert (frame["error"]["param"], frame["error"]["code"]) == ("user", "unsupported_parameter")


def test_a_message_over_the_body_limit_is_a_413_frame(gateway: str) -> None:
    big = {"type": "response.create", "model": "m-text", "input": "x" * (MAX_BODY + 1)}
    with connect(f"ws://{gateway.removeprefix('http://')}/v1/responses", additional_headers=_auth()) as ws:
        ws.send(orjson.dumps(big).decode())
        frame = orjson.loads(ws.recv())
        ws.send(orjson.dumps({"type": "response.create", "model": "m-text", "input": "hi"}).decode())
        after = orjson.loads(ws.recv())
    assert (frame["status"], frame["error"]["code"]) == (413, "request_too_large")
    assert after["type"] == "response.created"


def test_the_limit_counts_bytes_not_characters(gateway: str) -> None:
    text = "é" * (MAX_BODY // 2 + 10)  # fewer characters than the limit, more bytes
    with connect(f"ws://{gateway.removeprefix('http://')}/v1/responses", additional_headers=_auth()) as ws:
        ws.send(orjson.dumps({"type": "response.create", "model": "m-text", "input": text}).decode())
        frame = orjson.loads(ws.recv())
    assert (frame["status"], frame["error"]["code"]) == (413, "request_too_large")


def test_busy_lanes_are_capped_per_connection(gateway: str, fake: FakeChat) -> None:
    with connect(f"ws://{gateway.removeprefix('http://')}/v5/responses", additional_headers=_auth()) as ws:
        for lane in range(MAX_LANES + 1):
            hang = {"type": "response.create", "model": "fake/fake-hang-midstream", "input": "x"}
            ws.send(orjson.dumps({**hang, "stream_id": f"lane-{lane}"}).decode())
        frames: list[dict[str, Any]] = []
        while sum(f["type"] == "response.created" for f in frames) < MAX_LANES or not any(
            "status" in f for f in frames
        ):
            frames.append(orjson.loads(ws.recv()))
    refused = [f for f in frames if f["type"] == "error"]
    assert [(f["status"], f["stream_id"]) for f in refused] == [(429, f"lane-{MAX_LANES}")]
    assert {f["stream_id"] for f in frames if f["type"] == "response.created"} == {
        f"lane-{lane}" for lane in range(MAX_LANES)
    }
    assert fake.wait_for_disconnects(MAX_LANES)  # leaving cancelled every lane's upstream request


def test_time_up_mid_turn_ends_the_turn_and_the_connection(fake_upstream: tuple[FakeChat, str]) -> None:
    with _limited(fake_upstream, 0.5) as base_url:
        with connect(
            f"ws://{base_url.removeprefix('http://')}/v5/responses", additional_headers=_auth()
        ) as ws:
            hang = {"type": "response.create", "model": "fake/fake-hang-midstream", "input": "x"}
            ws.send(orjson.dumps(hang).decode())
            frames = []
            with pytest.raises(ConnectionClosedOK):
                while True:
                    frames.append(orjson.loads(ws.recv()))
    assert frames[0]["type"] == "response.created"
    assert frames[-1]["error"]["code"] == "websocket_connection_limit_reached"
    assert fake_upstream[0].wait_for_disconnects(1)


def test_a_stored_continuation_of_a_connection_only_response_indexes_its_items(client: openai.OpenAI) -> None:
    with client.responses.connect() as conn:
        conn.response.create(model="m-text", input="Remember basalt.", store=False)
        first = completed(conn)
        conn.response.create(model="m-text", input="And now?", previous_response_id=first["id"])
        completed(conn)  # stored: its input holds the first turn, which was never stored
    answer = first["output"][0]
    follow_up = client.responses.create(
        model="m-echo",
        input=[{"type": "item_reference", "id": answer["id"]}, {"role": "user", "content": "ok"}],
    )
    assert follow_up.status == "completed"


def test_each_lanes_latest_response_outlives_a_busy_lane() -> None:
    recent = RecentResponses(limit=2)
    recent.remember("idle-1", ["a"], "idle")
    for turn in range(10):
        recent.remember(f"busy-{turn}", [turn], "busy")
    assert list(recent.items) == ["idle-1", "busy-7", "busy-8", "busy-9"]
    recent.touch("busy-7")  # continued: the most recent of the rest now
    recent.remember("busy-10", [10], "busy")
    assert list(recent.items) == ["idle-1", "busy-9", "busy-7", "busy-10"]
