"""The stream accumulator: every block type the API streams comes out as it would be sent back."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from claude_magic.api.accumulate import MessageAccumulator
from claude_magic.api.protocol import parse_event

FINAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "thinking", "thinking": "Let me look.", "signature": "sig-1"},
    {"type": "redacted_thinking", "data": "opaque"},
    {"type": "text", "text": "The report says so.", "citations": [{"type": "char_location", "cited_text": "so", "document_index": 0}]},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "pelicans"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": [{"type": "web_search_result", "url": "https://e.org", "encrypted_content": "xyz", "page_age": None}]},
    {"type": "mcp_tool_use", "id": "mcptoolu_1", "name": "lookup", "server_name": "wiki", "input": {"term": "pelican", "limit": 2}},
    {"type": "mcp_tool_result", "tool_use_id": "mcptoolu_1", "is_error": False, "content": [{"type": "text", "text": "a bird"}]},
    {"type": "compaction", "content": "Summary of the earlier turns.", "encrypted_content": "enc-abc"},
    {"type": "tool_use", "id": "toolu_1", "name": "area", "input": {"w": 2, "h": 3}},
]
"""What the API's stream below describes, block by block: what must be sent back unchanged."""


def stream_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events as the API streams ``blocks``: text, thinking, JSON input and compaction in deltas."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5", "content": [], "stop_reason": None, "usage": {"input_tokens": 10, "output_tokens": 1}}}
    ]
    for index, block in enumerate(blocks):
        start, deltas = _start_and_deltas(block)
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 42}})
    events.append({"type": "message_stop"})
    return events


def _start_and_deltas(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = block["type"]
    if kind == "text":
        half = len(block["text"]) // 2
        deltas = [{"type": "text_delta", "text": block["text"][:half]}, {"type": "text_delta", "text": block["text"][half:]}]
        deltas += [{"type": "citations_delta", "citation": citation} for citation in block["citations"]]
        return {"type": "text", "text": ""}, deltas
    if kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}, [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    if "input" in block:
        raw = json.dumps(block["input"])
        return {**block, "input": {}}, [{"type": "input_json_delta", "partial_json": raw[:7]}, {"type": "input_json_delta", "partial_json": raw[7:]}]
    if kind == "compaction":
        content = block["content"]
        return {"type": "compaction", "content": None, "encrypted_content": None}, [
            {"type": "compaction_delta", "content": content[:9], "encrypted_content": None},
            {"type": "compaction_delta", "content": content[9:], "encrypted_content": block["encrypted_content"]},
        ]
    return block, []  # server-tool results, redacted thinking: complete at their start


def accumulate(events: list[dict[str, Any]]) -> MessageAccumulator:
    accumulator = MessageAccumulator()
    for event in events:
        accumulator.add(parse_event(event["type"], json.dumps(event)))
    return accumulator


def test_every_block_type_comes_out_as_the_api_described_it() -> None:
    accumulator = accumulate(stream_of(FINAL_BLOCKS))
    assert accumulator.content() == FINAL_BLOCKS
    assert accumulator.complete and accumulator.stop_reason == "tool_use"
    assert accumulator.text == "The report says so."


@pytest.mark.parametrize("block", [b for b in FINAL_BLOCKS if "input" in b], ids=lambda b: b["type"])
def test_partial_json_lands_in_the_input_of_any_block_that_takes_one(block: dict[str, Any]) -> None:
    assert accumulate(stream_of([block])).content() == [block]


def test_a_delta_for_a_block_that_never_started_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    events = stream_of([{"type": "text", "text": "Hello there", "citations": []}])
    events.insert(1, {"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "stray"}})
    with caplog.at_level(logging.WARNING, logger="claude_magic"):
        accumulator = accumulate(events)
    assert accumulator.text == "Hello there"
    assert [b["type"] for b in accumulator.content()] == ["text"]
    assert "content block 5, which never started, was ignored" in caplog.text
