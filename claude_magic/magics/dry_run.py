"""``--dry-run`` and ``--count``: what a question would send, shown without sending it.

Per attachment: its kind, size (characters, pixels and bytes, or a PDF's pages and bytes) and
an estimated token count, with images as small thumbnails; then the request body exactly as it
would go, except that image and PDF data (and a long document's text) is replaced by its
length (never pages of base64), and in a notebook the
earlier turns are folded under a line that counts them. A dry run sends nothing
at all: its input size is the local estimate. ``--count`` asks the server's
``count_tokens`` for the exact figure, and says that this is the one request it made.
``--estimate`` shows what the question could cost instead of what it sends.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from ..api.settings import mask_secret
from ..core.pricing import format_cost
from ..ui.render import fenced, literal_markdown, show_text

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.protocol import MessageRequest
    from ..attach.registry import Attachment
    from ..core.spending import CostRange
    from .settings import ClaudeSettings


def show(client: Client, request: MessageRequest, attachments: list[Attachment], *, count: bool = False) -> None:
    """Display the dry run of ``request`` (raises the client's errors for an invalid one);
    ``count``: with the server's count of its input tokens (the only request made)."""
    body = client.message_body(request, stream=True)
    settings = client.settings
    header = f"POST {settings.base_url.rstrip('/')}/v1/messages · anthropic-version: {settings.api_version} · not sent"
    if count:
        size = f"Input: {client.count_tokens(request):,} tokens, counted by the server (POST /v1/messages/count_tokens, the only request made)."
    else:
        size = f"Input: about {local_estimate(body):,} tokens (local estimate; nothing was sent: --count asks the server)."
    lines = [header, "", size]
    if attachments:
        lines += ["", "| attachment | kind | size | ~tokens |", "|---|---|---|---|"]
        lines += [f"| {a.label} | {literal_markdown(a.kind)} | {literal_markdown(a.size())} | {a.estimated_tokens():,} |" for a in attachments]
    summary = "\n".join(lines)
    show_text({"text/markdown": summary, "text/plain": summary})
    for attachment in attachments:
        if attachment.image is not None:
            show_text({"image/png": attachment.image.thumbnail_png(), "text/plain": f"thumbnail of {attachment.label}"})
    shown = without_image_data(body)
    text = json.dumps(shown, indent=2, ensure_ascii=False)
    show_text({"text/markdown": _collapsed_history(shown), "text/plain": text})


def show_estimate(magics: ClaudeSettings, lines: list[str], cost: CostRange, *, doing: str) -> None:
    """Display what a question or a job could cost (``lines``), then what the notebook's caps
    would do with ``cost``: ``doing`` names the act ("asking it")."""
    said = [*lines, *_what_the_caps_do(magics, cost, doing)]
    show_text({"text/markdown": "\n\n".join(literal_markdown(line) for line in said), "text/plain": "\n".join(said)})


def _what_the_caps_do(magics: ClaudeSettings, cost: CostRange, doing: str) -> list[str]:
    """The notebook's caps on ``cost`` in the order :meth:`ClaudeSettings.within_caps` applies
    them: the budget (which may refuse it, and then nothing else is asked), then ``confirm_above_usd``."""
    from ..core.spending import budget_shortfall

    said = []
    budget = magics.budget_usd
    if budget is not None:
        spent = magics.notebook_spent()
        if (shortfall := budget_shortfall(budget, spent, cost)) is not None:
            return [f"{doing.capitalize()} would be refused: {shortfall}."]
        said.append(f"This notebook's budget of {format_cost(budget)} has {format_cost(budget - spent)} left, enough for it.")
    if (threshold := magics.passed_threshold(cost)) is not None:
        said.append(f"Above confirm_above_usd ({format_cost(threshold)}): {doing} would ask you first.")
    return said


def _collapsed_history(body: dict[str, Any]) -> str:
    """The body as Markdown: the new question in full, the earlier messages folded away under a
    line that counts them (a long conversation would otherwise make the cell pages tall)."""
    *earlier, newest = body.get("messages") or [{}]
    if not earlier:
        return fenced(json.dumps(body, indent=2, ensure_ascii=False), "json")
    history = json.dumps(earlier, indent=2, ensure_ascii=False)
    turns = sum(1 for message in earlier if message.get("role") == "user")
    summary = f"{len(earlier)} earlier messages ({turns} turn{'s' if turns != 1 else ''}, {len(history):,} characters), sent before the question"
    question = {**body, "messages": [f"<the {len(earlier)} earlier messages above>", newest]}
    return (
        f"<details><summary>{summary}</summary>\n\n{fenced(history, 'json')}\n\n</details>\n\n"
        f"{fenced(json.dumps(question, indent=2, ensure_ascii=False), 'json')}"
    )


def local_estimate(body: dict[str, Any]) -> int:
    """About four characters a token for text, width × height / 750 for an image."""
    from ..core.budget import local_tokens

    return local_tokens(body.get("messages", []), body.get("system"))


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        blocks += [{"type": "text", "text": content}] if isinstance(content, str) else content
    return blocks


SHOWN_DOCUMENT_CHARS = 2_000
"""A text document longer than this shows as its length in the request body."""


def without_image_data(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` whose base64 image and PDF data (and long documents' text) is replaced
    by a note of its length, and whose MCP servers' tokens are masked as the key is."""
    shown = copy.deepcopy(body)
    for block in _blocks(shown):
        source = block.get("source") if block.get("type") in ("image", "document") else None
        if not isinstance(source, dict) or not isinstance(source.get("data"), str):
            continue
        if source.get("type") == "text" and len(source["data"]) > SHOWN_DOCUMENT_CHARS:
            source["data"] = f"<{len(source['data']):,} characters of text not shown>"
        elif source.get("type") == "base64":
            source["data"] = f"<{len(source['data']):,} characters of base64 not shown>"
    for server in shown.get("mcp_servers") or []:
        if server.get("authorization_token"):
            server["authorization_token"] = mask_secret(str(server["authorization_token"]))
    return shown
