"""The SSE decoder: WHATWG line rules under every possible chunking."""

from __future__ import annotations

import pytest

from gateway.sse import SSEDecoder, SSEMessage, encode_event


def decode_split(raw: bytes, cut: int) -> list[SSEMessage]:
    decoder = SSEDecoder()
    return decoder.feed(raw[:cut]) + decoder.feed(raw[cut:]) + decoder.flush()


RAW = (
    b": comment\n"
    b'event: message_start\ndata: {"a": 1}\n\n'
    b"data: line one\r\ndata: line two\r\n\r\n"
    b"data:no-space\r\r"
    b'data: {"text": "a\xe2\x80\xa8b"}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEMessage(data='{"a": 1}', event="message_start"),
    SSEMessage(data="line one\nline two"),
    SSEMessage(data="no-space"),
    SSEMessage(data='{"text": "a\u2028b"}'),
    SSEMessage(data="[DONE]"),
]


@pytest.mark.parametrize("cut", range(len(RAW) + 1))
def test_every_split_point_gives_the_same_messages(cut: int) -> None:
    assert decode_split(RAW, cut) == EXPECTED


def test_byte_at_a_time() -> None:
    decoder = SSEDecoder()
    out = [m for i in range(len(RAW)) for m in decoder.feed(RAW[i : i + 1])]
    assert out + decoder.flush() == EXPECTED


def test_unterminated_final_message_is_flushed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [SSEMessage(data="tail")]


def test_encode_event_writes_event_line_and_single_line_json() -> None:
    frame = encode_event({"type": "response.output_text.delta", "delta": "a\nb", "sequence_number": 4})
    assert frame == (
        b"event: response.output_text.delta\n"
        b'data: {"type":"response.output_text.delta","delta":"a\\nb","sequence_number":4}\n\n'
    )
