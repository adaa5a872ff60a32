"""Prompt caching: ``cache_control`` breakpoints on the part of a request that stays the same.

The API caches a request's prefix, in its order tools → system → messages, up to a block
marked ``cache_control: {"type": "ephemeral"}``; a later request with the same prefix reads
it from the cache (about a tenth of the price, and faster) and each breakpoint looks back up
to 20 blocks for an earlier entry. From one question to the next, what stays the same is the
system prompt, the attached context and the history up to the previous turn, so the
breakpoints are, in order of value:

1. the history's last block (the previous answer): the next question reads all of it back;
2. the system prompt, when long enough to be cached alone (the API ignores shorter prefixes
   without an error; a short one stays the plain string it was configured as);
3. attached context: kept free for a breakpoint the attachments may place on their own blocks.

The API takes at most :data:`MAX_BREAKPOINTS`; blocks that arrive already marked (such as
attachments) count against that, and ours give way. Nothing here changes the conversation:
marked blocks are copies.
"""

from __future__ import annotations

from typing import Any

EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4
MIN_CACHED_SYSTEM_CHARS = 4 * 1024
"""About 1,024 tokens: below the minimum prefix most models cache, a system prompt is not marked."""
UNCACHEABLE_BLOCKS = frozenset({"thinking", "redacted_thinking"})
"""Block types that can't carry ``cache_control``."""


def count_breakpoints(blocks: list[dict[str, Any]]) -> int:
    return sum(1 for block in blocks if "cache_control" in block)


def mark(
    system: str | None, history: list[dict[str, Any]], question: list[dict[str, Any]]
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The system prompt and the messages (history, then the question) with breakpoints placed.

    Breakpoints left in the history by earlier requests are dropped: only the current
    placement counts, and old ones would soon pass the API's limit."""
    free = MAX_BREAKPOINTS - count_breakpoints(question)
    history = unmarked(history)
    if free > 0 and history:
        history = mark_last_block(history)
        free -= 1
    cached_system: str | list[dict[str, Any]] | None = system or None
    if free > 0 and system and len(system) >= MIN_CACHED_SYSTEM_CHARS:
        cached_system = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    return cached_system, [*history, {"role": "user", "content": question}]


def mark_last_block(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of ``messages`` whose last block that can carry ``cache_control`` does."""
    marked = list(messages)
    for index in range(len(marked) - 1, -1, -1):
        content = marked[index]["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        for position in range(len(blocks) - 1, -1, -1):
            if blocks[position].get("type") not in UNCACHEABLE_BLOCKS:
                blocks[position] = {**blocks[position], "cache_control": EPHEMERAL}
                marked[index] = {**marked[index], "content": blocks}
                return marked
    return marked


def unmarked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` without any ``cache_control`` (copies only where one is removed)."""
    return [_without_marks(m) for m in messages]


def _without_marks(message: dict[str, Any]) -> dict[str, Any]:
    content = message["content"]
    if isinstance(content, str) or not any("cache_control" in b for b in content):
        return message
    return {**message, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in content]}
