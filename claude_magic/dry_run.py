"""``--dry-run``: what a question would send, shown without sending it.

Per attachment: its kind, size (characters, or pixels and bytes) and an estimated token
count, with images as small thumbnails; then the request body exactly as it would go, except
that image data is replaced by its length (never pages of base64).
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from .errors import ClaudeError
from .render import fenced, show_text

if TYPE_CHECKING:
    from .client import Client
    from .context import Attachment
    from .protocol import MessageRequest


def show(client: Client, request: MessageRequest, attachments: list[Attachment]) -> None:
    """Display the dry run of ``request`` (raises the client's errors for an invalid one)."""
    body = client.message_body(request, stream=True)
    settings = client.settings
    header = f"POST {settings.base_url.rstrip('/')}/v1/messages · anthropic-version: {settings.api_version} · not sent (--dry-run)"
    total, how = _input_tokens(client, request, body)
    lines = [header, "", f"Input: about {total:,} tokens ({how})."]
    if attachments:
        lines += ["", "| attachment | kind | size | ~tokens |", "|---|---|---|---|"]
        lines += [f"| {a.label} | {a.kind} | {a.size()} | {a.estimated_tokens():,} |" for a in attachments]
    summary = "\n".join(lines)
    show_text({"text/markdown": summary, "text/plain": summary})
    for attachment in attachments:
        if attachment.image is not None:
            show_text({"image/png": attachment.image.thumbnail_png(), "text/plain": f"thumbnail of {attachment.label}"})
    text = json.dumps(without_image_data(body), indent=2, ensure_ascii=False)
    show_text({"text/markdown": fenced(text, "json"), "text/plain": text})


def _input_tokens(client: Client, request: MessageRequest, body: dict[str, Any]) -> tuple[int, str]:
    """The server's ``count_tokens`` when it answers, else a local estimate."""
    from .client import Client

    try:
        with Client(client.settings.with_(max_retries=0, timeout=10.0)) as counter:
            return counter.count_tokens(request), "count_tokens"
    except ClaudeError:
        return local_estimate(body), "local estimate: the server did not count"


def local_estimate(body: dict[str, Any]) -> int:
    """About four characters a token for text, width × height / 750 for an image."""
    from .images import image_size

    text_chars = 0
    image_tokens = 0
    for block in _blocks(body):
        if block.get("type") == "image" and block.get("source", {}).get("type") == "base64":
            width, height = image_size(block["source"]["data"])
            image_tokens += width * height // 750
        else:
            text_chars += len(json.dumps(block, ensure_ascii=False))
    system = body.get("system") or ""
    return (text_chars + len(json.dumps(system))) // 4 + image_tokens


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        blocks += [{"type": "text", "text": content}] if isinstance(content, str) else content
    return blocks


def without_image_data(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` whose base64 image data is replaced by a note of its length."""
    shown = copy.deepcopy(body)
    for block in _blocks(shown):
        source = block.get("source") if block.get("type") == "image" else None
        if isinstance(source, dict) and isinstance(source.get("data"), str):
            source["data"] = f"<{len(source['data']):,} characters of base64 not shown>"
    return shown
