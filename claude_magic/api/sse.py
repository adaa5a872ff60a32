"""Incremental Server-Sent Events decoder working on raw bytes.

Bytes are framed before they are decoded, so a UTF-8 character split across network
chunks is never cut. LF, CRLF and CR line endings are accepted (a CR at the end of one
chunk may be the first half of a CRLF split across chunks), and unlike the official SDK a last event with no
terminating blank line is still delivered by :meth:`SSEDecoder.flush`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ServerSentEvent:
    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed it chunks as they arrive; it returns each event once its blank line is seen."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._skip_lf = False
        """The previous chunk ended in CR: an LF starting this one is the rest of a CRLF."""
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += self._normalise_newlines(chunk)
        return self._complete_events()

    def flush(self) -> list[ServerSentEvent]:
        """Deliver what remains at end of stream, including an unterminated last event."""
        self._skip_lf = False
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        event = self._parse_block(rest)
        return [event] if event is not None else []

    def _normalise_newlines(self, chunk: bytes) -> bytes:
        """Turn every line ending into LF at once, so an event ending in CR is not held back."""
        if not chunk:
            return chunk
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")
        if b"\r" not in chunk:
            return chunk
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _complete_events(self) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        buffer = self._buffer
        start = 0
        # Resume the search one byte back: the previous chunk may have ended on the first "\n".
        search_from = max(self._scanned - 1, 0)
        while True:
            end = buffer.find(b"\n\n", search_from)
            if end < 0:
                break
            event = self._parse_block(bytes(buffer[start:end]))
            if event is not None:
                events.append(event)
            start = search_from = end + 2
        if start:
            del buffer[:start]
        self._scanned = len(buffer)
        return events

    def _parse_block(self, block: bytes) -> ServerSentEvent | None:
        """Apply the WHATWG field rules to one event's lines."""
        name: str | None = None
        data: list[bytes] = []
        retry: int | None = None
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            field, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if field == b"data":
                data.append(value)
            elif field == b"event":
                name = value.decode("utf-8", "replace") or None
            elif field == b"id":
                if b"\0" not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif field == b"retry" and value.isdigit():
                retry = int(value)
        if not data and name is None:
            return None
        text = b"\n".join(data).decode("utf-8", "replace")
        return ServerSentEvent(event=name, data=text, id=self._last_id, retry=retry)
