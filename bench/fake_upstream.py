"""A very fast fake OpenAI Chat Completions server for benchmarks (not a test double for behaviour).

`POST /v1/chat/completions` answers with a fixed small `chat.completion`, or with `"stream": true` an SSE
stream of one role chunk, 20 content-delta chunks, a finish chunk, a usage chunk (when
`stream_options.include_usage` is set) and `data: [DONE]`, in OpenAI's chunk shape, over chunked
transfer-encoding. `GET /healthz` answers 200.

A raw asyncio protocol on uvloop with httptools' parser: every reply is prebuilt bytes, so the only work
per request is parsing the HTTP request and its (small) JSON body. It runs in its own process:

    .venv/bin/python bench/fake_upstream.py --port 9101 [--deltas 20] [--delta-gap-ms 0]

With `--delta-gap-ms 0` a stream goes out in one write (the cheapest for both ends: the gateway usually
reads it in one piece). With a gap > 0 each SSE event is its own write, `gap` ms apart, as a real model
paces tokens, so the gateway handles every delta in its own read and write.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

import httptools
import orjson
import uvloop

MODEL = "fake-model"
COMPLETION_ID = "chatcmpl-bench0000000000000000000000"
CONTENT = "Hello! This is a fixed answer from the benchmark's fake upstream."


def _json_reply() -> bytes:
    created = int(time.time())
    body = orjson.dumps(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32},
        }
    )
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def _chunk(delta: dict[str, object], finish: str | None = None, created: int = 0) -> dict[str, object]:
    return {
        "id": COMPLETION_ID,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _stream_events(deltas: int, include_usage: bool) -> list[bytes]:
    """Each SSE event framed as one HTTP chunk (`<hex size>\\r\\n<event>\\r\\n`); ends with the last chunk."""
    created = int(time.time())
    chunks: list[dict[str, object]] = [_chunk({"role": "assistant", "content": ""}, created=created)]
    chunks += [_chunk({"content": f"tok{i} "}, created=created) for i in range(deltas)]
    chunks.append(_chunk({}, "stop", created))
    if include_usage:
        usage = _chunk({}, created=created)
        usage["choices"] = []
        usage["usage"] = {"prompt_tokens": 12, "completion_tokens": deltas, "total_tokens": 12 + deltas}
        chunks.append(usage)
    events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    framed = [f"{len(e):x}\r\n".encode() + e + b"\r\n" for e in events]
    return [*framed, b"0\r\n\r\n"]


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _plain(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: text/plain\r\ncontent-length: "
        + str(len(text)).encode()
        + b"\r\n\r\n"
        + text
    )


HEALTH_REPLY = _plain(b"200 OK", b"ok")
NOT_FOUND_REPLY = _plain(b"404 Not Found", b"not found")
BAD_REQUEST_REPLY = _plain(b"400 Bad Request", b"bad request")


class Replies:
    def __init__(self, deltas: int, gap_s: float) -> None:
        self.json = _json_reply()
        self.gap_s = gap_s
        self.stream_usage = [STREAM_HEAD, *_stream_events(deltas, include_usage=True)]
        self.stream_plain = [STREAM_HEAD, *_stream_events(deltas, include_usage=False)]
        self.stream_usage_joined = b"".join(self.stream_usage)
        self.stream_plain_joined = b"".join(self.stream_plain)


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; HTTP/1.1 keep-alive, requests answered in order."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.pending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.pending is not None:
            self.pending.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(BAD_REQUEST_REPLY, keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        if method == b"GET" and self.url == b"/healthz":
            self._send(HEALTH_REPLY, keep_alive)
            return
        if method != b"POST" or self.url != b"/v1/chat/completions":
            self._send(NOT_FOUND_REPLY, keep_alive)
            return
        try:
            request = orjson.loads(b"".join(self.body))
        except orjson.JSONDecodeError:
            self._send(BAD_REQUEST_REPLY, keep_alive)
            return
        if not isinstance(request, dict) or request.get("stream") is not True:
            self._send(self.replies.json, keep_alive)
            return
        options = request.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        if self.replies.gap_s <= 0:
            joined = self.replies.stream_usage_joined if usage else self.replies.stream_plain_joined
            self._send(joined, keep_alive)
            return
        events = self.replies.stream_usage if usage else self.replies.stream_plain
        self.pending = asyncio.get_running_loop().create_task(self._paced(events, keep_alive))

    async def _paced(self, events: list[bytes], keep_alive: bool) -> None:
        """Head and first event at once, then each further event `gap` seconds after the previous."""
        transport = self.transport
        if transport is None:
            return
        transport.write(events[0] + events[1])
        for event in events[2:]:
            await asyncio.sleep(self.replies.gap_s)
            if transport.is_closing():
                return
            transport.write(event)
        self.pending = None
        if not keep_alive:
            transport.close()

    def _send(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()


async def serve(host: str, port: int, deltas: int, gap_ms: float) -> None:
    replies = Replies(deltas, gap_ms / 1000)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(replies), host, port, backlog=1024)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--deltas", type=int, default=20, help="content deltas per stream")
    parser.add_argument("--delta-gap-ms", type=float, default=0.0, help="pause between stream events")
    args = parser.parse_args(argv)
    try:
        uvloop.run(serve(args.host, args.port, args.deltas, args.delta_gap_ms))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
