"""Builds the assistant's message from stream events, so a partial answer is never lost.

State is plain Python data (lists of text pieces per block) so that applying a delta is an
append; the validated :class:`~claude_magic.protocol.Message` is built on demand.

Every block is kept as it was received (the API wants blocks sent back unchanged): fields the
package does not model survive, partial JSON goes into the ``input`` of whichever block has
one (``tool_use``, ``server_tool_use``, ``mcp_tool_use``, …), and a delta of a kind it does not
model adds its text fields to the block's fields of the same name (``compaction_delta``).
A delta for a block that never started is a protocol violation: it is logged and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    CitationsDelta,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    InputJSONDelta,
    Message,
    MessageDeltaEvent,
    MessageStartEvent,
    MessageStopEvent,
    OtherDelta,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
)

_PIECE_FIELD = {"text": "text", "thinking": "thinking"}
log = logging.getLogger("claude_magic")


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
        elif self.pieces:  # input_json_delta pieces, for any block that takes an input
            block["input"] = _parse_partial_json("".join(self.pieces))
        return block

    def extend(self, fields: dict[str, Any]) -> None:
        """A delta of a kind not modelled here: its text is appended to the block's field of the
        same name, anything else replaces it."""
        for name, value in fields.items():
            if isinstance(value, str) and isinstance(self.data.get(name), str):
                self.data[name] += value
            elif value is not None:
                self.data[name] = value


def _as_received(block: Any) -> dict[str, Any]:
    """A validated block as the JSON it came as: fields it had, nulls included; no defaults added."""
    return block.model_dump(mode="json", exclude_unset=True)  # type: ignore[no-any-return]


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
            self._blocks[event.index] = _Block(_as_received(event.content_block))
        elif isinstance(event, MessageStartEvent):
            self._start(event)
        elif isinstance(event, MessageDeltaEvent):
            self._apply_message_delta(event)
        elif isinstance(event, MessageStopEvent):
            self.complete = True

    def _start(self, event: MessageStartEvent) -> None:
        head = event.message.model_dump(mode="json", exclude_none=True)
        head.pop("content", None)
        self._usage = head.pop("usage", {})
        self._head = head
        for index, block in enumerate(event.message.content):
            self._blocks[index] = _Block(_as_received(block))

    def _add_delta(self, event: ContentBlockDeltaEvent) -> None:
        delta = event.delta
        block = self._blocks.get(event.index)
        if block is None:
            log.warning("a %s for content block %d, which never started, was ignored (a protocol violation)", delta.type, event.index)
            return
        if isinstance(delta, TextDelta):
            block.pieces.append(delta.text)
        elif isinstance(delta, ThinkingDelta):
            block.pieces.append(delta.thinking)
        elif isinstance(delta, InputJSONDelta):
            block.pieces.append(delta.partial_json)
        elif isinstance(delta, SignatureDelta):
            block.data["signature"] = delta.signature
        elif isinstance(delta, CitationsDelta):  # a start may say "citations": null
            block.data["citations"] = [*(block.data.get("citations") or []), delta.citation]
        elif isinstance(delta, OtherDelta):
            block.extend(delta.model_extra or {})

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

    def block(self, index: int) -> dict[str, Any] | None:
        """Content block ``index`` as it stands, a plain dict (None: no such block)."""
        block = self._blocks.get(index)
        return None if block is None else block.materialise()

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


def events_of(message: dict[str, Any]) -> Iterator[StreamEvent]:
    """The events a stream of ``message`` (complete, e.g. saved or cached) would have brought, so
    it can be shown as it was: each text and thinking block whole in one delta, a text's
    citations as ``citations_delta``s, any other block whole at its start. Added to a fresh
    accumulator, they give back ``message``'s blocks."""
    from .protocol import parse_event

    def event(kind: str, **fields: Any) -> StreamEvent:
        return parse_event(kind, json.dumps({"type": kind, **fields}))

    head = {k: v for k, v in message.items() if k not in ("content", "stop_reason", "stop_sequence")}
    yield event("message_start", message={**head, "content": []})
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            citations = block.get("citations") or []
            start = {k: v for k, v in block.items() if not (k == "citations" and citations)}
            yield event("content_block_start", index=index, content_block={**start, "text": ""})
            yield event("content_block_delta", index=index, delta={"type": "text_delta", "text": block.get("text", "")})
            for citation in citations:
                yield event("content_block_delta", index=index, delta={"type": "citations_delta", "citation": citation})
        elif kind == "thinking":
            yield event("content_block_start", index=index, content_block={**block, "thinking": ""})
            yield event("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": block.get("thinking", "")})
        else:
            yield event("content_block_start", index=index, content_block=block)
        yield event("content_block_stop", index=index)
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    yield event("message_delta", delta=delta, usage=message.get("usage") or {})
    yield event("message_stop")
