"""Builds the assistant's message from stream events, so a partial answer is never lost.

State is plain Python data (lists of text pieces per block) so that applying a delta is an
append; the validated :class:`~claude_magic.protocol.Message` is built on demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    CitationsDelta,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ErrorBody,
    ErrorEvent,
    InputJSONDelta,
    Message,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
)

_PIECE_FIELD = {"text": "text", "thinking": "thinking"}
_JSON_INPUT_BLOCKS = ("tool_use", "server_tool_use")


@dataclass(slots=True)
class _Block:
    data: dict[str, Any]
    pieces: list[str] = field(default_factory=list)
    """Streamed text, thinking or partial JSON, joined when the block is read."""

    def materialise(self) -> dict[str, Any]:
        block = dict(self.data)
        kind = block.get("type")
        if kind in _PIECE_FIELD:
            name = _PIECE_FIELD[kind]
            block[name] = block.get(name, "") + "".join(self.pieces)
        elif kind in _JSON_INPUT_BLOCKS and self.pieces:
            block["input"] = _parse_partial_json("".join(self.pieces))
        return block


def _parse_partial_json(raw: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"_partial_json": raw}


class MessageAccumulator:
    """Apply events in order with :meth:`add`; read :attr:`text` or :meth:`message` any time."""

    def __init__(self) -> None:
        self._head: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _Block] = {}
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.error: ErrorBody | None = None
        self.complete = False
        """True once ``message_stop`` arrived."""

    @classmethod
    def of_message(cls, message: dict[str, Any]) -> MessageAccumulator:
        """The state a stream of ``message`` (a complete message, e.g. a cached one) ends in."""
        accumulator = cls()
        head = {k: v for k, v in message.items() if k not in ("content", "usage", "stop_reason", "stop_sequence")}
        accumulator._head, accumulator._usage = head, dict(message.get("usage", {}))
        accumulator._blocks = {i: _Block(dict(block)) for i, block in enumerate(message.get("content", []))}
        accumulator.stop_reason, accumulator.stop_sequence = message.get("stop_reason"), message.get("stop_sequence")
        accumulator.complete = True
        return accumulator

    def add(self, event: StreamEvent) -> None:
        """Apply one event (unknown ones change nothing)."""
        if isinstance(event, ContentBlockDeltaEvent):
            self._add_delta(event)
        elif isinstance(event, ContentBlockStartEvent):
            self._blocks[event.index] = _Block(event.content_block.model_dump(mode="json", exclude_none=True))
        elif isinstance(event, MessageStartEvent):
            self._start(event)
        elif isinstance(event, MessageDeltaEvent):
            self._apply_message_delta(event)
        elif isinstance(event, MessageStopEvent):
            self.complete = True
        elif isinstance(event, ErrorEvent):
            self.error = event.error

    def _start(self, event: MessageStartEvent) -> None:
        head = event.message.model_dump(mode="json", exclude_none=True)
        head.pop("content", None)
        self._usage = head.pop("usage", {})
        self._head = head
        for index, block in enumerate(event.message.content):
            self._blocks[index] = _Block(block.model_dump(mode="json", exclude_none=True))

    def _add_delta(self, event: ContentBlockDeltaEvent) -> None:
        delta = event.delta
        block = self._blocks.get(event.index)
        if block is None:  # a delta before its block_start: keep it rather than fail
            block = self._blocks[event.index] = _Block({"type": "text", "text": ""})
        if isinstance(delta, TextDelta):
            block.pieces.append(delta.text)
        elif isinstance(delta, ThinkingDelta):
            block.pieces.append(delta.thinking)
        elif isinstance(delta, InputJSONDelta):
            block.pieces.append(delta.partial_json)
        elif isinstance(delta, SignatureDelta):
            block.data["signature"] = delta.signature
        elif isinstance(delta, CitationsDelta):
            block.data.setdefault("citations", []).append(delta.citation)

    def _apply_message_delta(self, event: MessageDeltaEvent) -> None:
        if event.delta.stop_reason is not None:
            self.stop_reason = event.delta.stop_reason
        if event.delta.stop_sequence is not None:
            self.stop_sequence = event.delta.stop_sequence
        # stop_details, container and fields yet to come belong to the message itself
        for name, value in (event.delta.model_extra or {}).items():
            if value is not None:
                self._head[name] = value
        # Usage in message_delta is cumulative: overwrite each field it carries, never add.
        for name, value in event.usage.model_dump(exclude_none=True).items():
            self._usage[name] = value

    @property
    def started(self) -> bool:
        return bool(self._head)

    @property
    def usage(self) -> dict[str, Any]:
        return dict(self._usage)

    @property
    def text(self) -> str:
        """The answer's text so far."""
        return "".join(
            b.data.get("text", "") + "".join(b.pieces)
            for _, b in sorted(self._blocks.items())
            if b.data.get("type") == "text"
        )

    def content(self) -> list[dict[str, Any]]:
        """The content blocks so far, as plain dicts ready to send back as history."""
        return [block.materialise() for _, block in sorted(self._blocks.items())]

    def message(self) -> Message:
        """The message so far (complete once :attr:`complete` is true)."""
        return Message.model_validate(
            {
                "id": "",
                "model": "",
                **self._head,
                "content": self.content(),
                "stop_reason": self.stop_reason,
                "stop_sequence": self.stop_sequence,
                "usage": self._usage,
            }
        )
