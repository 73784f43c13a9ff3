"""The stream driver: whole events per write, first bytes before the upstream finishes, one terminal."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.openai_chat import ChatCompletionsAdapter
from gateway.errors import UpstreamTimeout
from gateway.stream import translate_stream
from schemas.canonical import Message, Request
from tests.helpers import IDS, make_encoder
from tests.invariants import check_stream, parse_sse

FIXTURES = Path(__file__).parent / "fixtures" / "chat"
REQUEST = Request(model="m", input=(Message(role="user", content=()),), stream=True)
ADAPTER = ChatCompletionsAdapter()


class Upstream:
    """Yields a recorded body in random small chunks and counts how far it has been read."""

    def __init__(self, raw: bytes, seed: int, fail_after: int | None = None) -> None:
        rng = random.Random(seed)
        self.chunks: list[bytes] = []
        start = 0
        while start < len(raw):
            end = start + rng.randint(1, 30)
            self.chunks.append(raw[start:end])
            start = end
        self.pulled = 0
        self.fail_after = fail_after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if self.fail_after is not None and self.pulled == self.fail_after:
                raise UpstreamTimeout("The upstream did not answer in time.")
            self.pulled += 1
            yield chunk


async def drive(upstream: Upstream) -> list[tuple[int, bytes]]:
    """(chunks pulled so far, bytes written) for every write the driver makes."""
    writes = []
    async for data in translate_stream(
        upstream.__aiter__(), ADAPTER.open_stream(REQUEST, IDS), make_encoder()
    ):
        writes.append((upstream.pulled, data))
    return writes


@pytest.mark.parametrize("case", ["text", "tool_call", "parallel_tool_calls", "reasoning_llamacpp", "crlf"])
@pytest.mark.parametrize("seed", range(5))
async def test_every_write_is_whole_events_and_output_is_streamed(case: str, seed: int) -> None:
    upstream = Upstream((FIXTURES / f"{case}.stream.sse").read_bytes(), seed)
    writes = await drive(upstream)
    for _, data in writes:
        assert data.startswith(b"event: ") and data.endswith(b"\n\n")
        parse_sse(data)  # each write parses on its own: no event straddles two writes
    assert writes[0][0] == 0  # created + in_progress go out before any upstream byte is read
    first_item = next(i for i, (_, data) in enumerate(writes) if b"output_item.added" in data)
    assert writes[first_item][0] < len(upstream.chunks)  # items flow before the upstream has finished
    events = parse_sse(b"".join(data for _, data in writes))
    assert check_stream(events)["status"] == "completed"


async def test_transport_failure_mid_stream_ends_with_response_failed() -> None:
    upstream = Upstream((FIXTURES / "text.stream.sse").read_bytes(), 0, fail_after=40)
    events = parse_sse(b"".join(data for _, data in await drive(upstream)))
    final = check_stream(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert final["error"] == {"code": "server_error", "message": "The upstream did not answer in time."}
    assert events[-2]["code"] == "upstream_timeout" and events[-2]["error"]["type"] == "upstream_error"


async def test_truncated_upstream_stream_fails_instead_of_completing() -> None:
    raw = (FIXTURES / "text.stream.sse").read_bytes()
    events = parse_sse(b"".join(data for _, data in await drive(Upstream(raw[: len(raw) // 2], 1))))
    assert check_stream(events)["status"] == "failed"
