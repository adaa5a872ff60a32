"""The stand-in's prompt cache: deterministic input, cache-write and cache-read token counts.

A request is a sequence of segments in the API's order: each tool, each system block, then
each block of each message. A segment has a fixed token count (about four characters a
token of its JSON; an image 1,500; a page of PDF 2,000) and the prefix up to it a hash (per model, as the API's
caches are). A breakpoint is a segment marked with ``cache_control``. As in the API:

* the prefix up to every breakpoint is remembered once a request has carried it;
* each breakpoint looks back up to :data:`LOOKBACK` segments for a remembered prefix; the
  longest one found is **read** from the cache;
* the rest of the prefix, up to the last breakpoint, is **written**;
* ``input_tokens`` counts only what follows the last breakpoint (and everything, when the
  request has no breakpoint), so input + written + read is the request's whole input.

There is no expiry and no minimum prefix length, so a test can predict every figure.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from ..api.pdf import PAGE_TOKENS, base64_page_count

LOOKBACK = 20
IMAGE_TOKENS = 1500
MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class Segment:
    tokens: int
    digest: str
    """Hash of the request's prefix up to and including this segment."""
    ttl: str | None
    """``5m`` or ``1h`` for a breakpoint; None for an unmarked segment."""


def _pieces(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's cacheable pieces in the API's order: tools → system → messages."""
    pieces: list[dict[str, Any]] = [{"tool": tool} for tool in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str) and system:
        pieces.append({"system": {"type": "text", "text": system}})
    elif isinstance(system, list):
        pieces += [{"system": block} for block in system]
    for index, message in enumerate(body.get("messages") or []):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        pieces += [{"message": index, "role": message.get("role"), "block": block} for block in blocks]
    return pieces


def _block_of(piece: dict[str, Any]) -> dict[str, Any]:
    block = piece.get("block", piece.get("system", piece.get("tool")))
    return block if isinstance(block, dict) else {}


def _tokens(piece: dict[str, Any]) -> int:
    block = _block_of(piece)
    if block.get("type") == "image":
        return IMAGE_TOKENS
    source = block.get("source")
    if block.get("type") == "document" and isinstance(source, dict) and source.get("type") == "base64":
        return max(1, base64_page_count(str(source.get("data", "")))) * PAGE_TOKENS
    return max(1, len(json.dumps(piece, sort_keys=True, separators=(",", ":"))) // 4)


def segments(model: str, body: dict[str, Any]) -> list[Segment]:
    running = hashlib.sha256(model.encode())
    result = []
    for piece in _pieces(body):
        block = _block_of(piece)
        marker = block.get("cache_control")
        bare = {**piece}
        for key in ("block", "system", "tool"):
            if key in bare and isinstance(bare[key], dict):
                bare[key] = {k: v for k, v in bare[key].items() if k != "cache_control"}
        running.update(json.dumps(bare, sort_keys=True, separators=(",", ":")).encode())
        ttl = (marker.get("ttl") or "5m") if isinstance(marker, dict) else None
        result.append(Segment(_tokens(bare), running.copy().hexdigest(), ttl))
    return result


def input_tokens(body: dict[str, Any]) -> int:
    """The request's whole input, cached or not."""
    return sum(segment.tokens for segment in segments(str(body.get("model", "")), body))


def breakpoints(body: dict[str, Any]) -> int:
    return sum(1 for piece in _pieces(body) if "cache_control" in _block_of(piece))


class PromptCache:
    """The prefixes the stand-in has cached; thread-safe."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def usage(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        """The input side of the usage the API would report for ``body``, caching it."""
        parts = segments(model, body)
        marks = [i for i, segment in enumerate(parts) if segment.ttl is not None]
        total = sum(segment.tokens for segment in parts)
        if not marks:
            return _usage(total, 0, 0, 0)
        with self._lock:
            read_end = self._longest_hit(parts, marks)
            self._seen.update(parts[i].digest for i in marks)
        written = parts[read_end : marks[-1] + 1]
        one_hour = sum(s.tokens for i, s in enumerate(written, read_end) if _ttl_at(parts, marks, i) == "1h")
        read = sum(s.tokens for s in parts[:read_end])
        write = sum(s.tokens for s in written)
        return _usage(total - read - write, write - one_hour, one_hour, read)

    def _longest_hit(self, parts: list[Segment], marks: list[int]) -> int:
        """How many leading segments the cache holds, found by looking back from each breakpoint."""
        best = 0
        for mark in marks:
            for index in range(mark, max(mark - LOOKBACK, -1), -1):
                if parts[index].digest in self._seen:
                    best = max(best, index + 1)
                    break
        return best


def _ttl_at(parts: list[Segment], marks: list[int], index: int) -> str | None:
    """A written segment's TTL: that of the first breakpoint at or after it."""
    return next((parts[m].ttl for m in marks if m >= index), None)


def _usage(uncached: int, write_5m: int, write_1h: int, read: int) -> dict[str, Any]:
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
    }
