"""Citations on a question's documents, as the API allows them.

``--cite`` (or ``ClaudeMagics.cite``) turns on ``citations`` for the documents a question
attaches. The API takes citations on all of a request's documents or on none, and the
documents of earlier questions are sent back as they were sent (the prompt cache's prefix,
and the record of what was asked, depend on it). So a new document follows the conversation:
cited where the documents already in it are, and ``--cite`` where they were sent without is
refused in one line, before anything is sent.

Cited answers come back as text blocks carrying ``citations`` (assistant text may keep them
under every API version); a user turn never carries any, as version ``2026-10-21`` requires.
"""

from __future__ import annotations

from typing import Any

from ..api.errors import ClaudeError


class CitationsError(ClaudeError):
    """Citations asked for where the conversation's documents have none; nothing is sent."""


def is_cited(block: dict[str, Any]) -> bool:
    return bool((block.get("citations") or {}).get("enabled"))


def with_citations(question: list[dict[str, Any]], cite: bool, earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``question``'s blocks with ``citations`` on their documents as ``cite`` asks and the
    ``earlier`` messages' documents allow (see the module's docstring)."""
    documents = [b for b in question if b.get("type") == "document"]
    if not documents:
        return question
    sent = [b for m in earlier if isinstance(m.get("content"), list) for b in m["content"] if b.get("type") == "document"]
    uncited = sum(1 for b in sent if not is_cited(b))
    if cite and uncited:
        raise CitationsError(
            f"--cite: this conversation holds {uncited} document{'s' if uncited != 1 else ''} sent without citations, and the "
            "API takes citations on all the documents of a request or on none: ask with --new to start afresh, or without --cite"
        )
    if not (cite or (sent and not uncited)):
        return question
    return [{**b, "citations": {"enabled": True}} if b.get("type") == "document" else b for b in question]
