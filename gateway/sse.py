"""Server-sent events: an incremental decoder for upstream bytes and the encoder for our own events.

The decoder splits lines only on CR, LF and CRLF (never `str.splitlines()`, which also splits on U+2028
inside JSON payloads) and accepts any chunking of the byte stream, including a CRLF split across reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class SSEMessage:
    data: str
    event: str | None = None


class SSEDecoder:
    """Feed raw bytes as they arrive; get back every complete message (WHATWG SSE rules)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        buffer = self._buffer + chunk
        messages: list[SSEMessage] = []
        start = 0
        length = len(buffer)
        while start < length:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < length and buffer[nxt] == 0x0A:
                    nxt += 1
                elif nxt == length:
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            message = self._line(buffer[start:end].decode("utf-8"))
            if message is not None:
                messages.append(message)
            start = nxt
        self._buffer = buffer[start:]
        return messages

    def flush(self) -> list[SSEMessage]:
        """End of stream: a trailing line without its newline, and a message without its blank line."""
        messages: list[SSEMessage] = []
        if self._buffer:
            message = self._line(self._buffer.decode("utf-8"))
            self._buffer = b""
            if message is not None:
                messages.append(message)
        message = self._line("")
        if message is not None:
            messages.append(message)
        return messages

    def _line(self, line: str) -> SSEMessage | None:
        if not line:
            if not self._data and self._event is None:
                return None
            message = SSEMessage(data="\n".join(self._data), event=self._event)
            self._data, self._event = [], None
            return message
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None


def encode_event(payload: dict[str, Any]) -> bytes:
    """One Responses event as one SSE frame (`event:` line included), ready for a single write."""
    kind: str = payload["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
