"""Image and document blocks in the conversation: each held once in memory and sent once a request.

An image or a document attached again takes the text the conversation already holds
(:func:`share_data`), and a request carries each once, later copies becoming a short note
(:func:`drop_repeated_images`). They are told apart by their payload itself: the base64 text
of an image or a PDF, the text of a text document, the address of a document by URL.
"""

from __future__ import annotations

from typing import Any

REPEATED_IMAGE_NOTE = "(the same image as one earlier in this conversation)"
REPEATED_DOCUMENT_NOTE = "(the same document as one earlier in this conversation: {title})"


def drop_repeated_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each image and document sent once: a later copy becomes a short note.

    Works on what is actually sent (after the context budget has left turns out), so an image
    whose first copy was left out is sent in full again. The messages given are not changed.
    Payloads are told apart by their text itself, whose hash Python keeps with the text: an
    image is hashed once in its life, not once a question.
    """
    seen: set[tuple[str, str]] = set()
    result = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            result.append(message)
            continue
        blocks = []
        for block in content:
            key = payload_key(block)
            if key is not None and key in seen:
                block = {"type": "text", "text": _repeated_note(block)}
            elif key is not None:
                seen.add(key)
            blocks.append(block)
        result.append({**message, "content": blocks})
    return result


def _repeated_note(block: dict[str, Any]) -> str:
    if block.get("type") == "image":
        return REPEATED_IMAGE_NOTE
    return REPEATED_DOCUMENT_NOTE.format(title=block.get("title") or "untitled")


def base64_data(block: dict[str, Any]) -> str | None:
    """The base64 text of an image block, if it carries its data."""
    source = block.get("source") if block.get("type") == "image" else None
    if isinstance(source, dict) and source.get("type", "base64") == "base64" and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def document_data(block: dict[str, Any]) -> str | None:
    """The data a document block carries (a PDF's base64, a text document's text), if any."""
    source = block.get("source") if block.get("type") == "document" else None
    if isinstance(source, dict) and source.get("type") in ("base64", "text") and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def pdf_data(block: dict[str, Any]) -> str | None:
    """The base64 text of a PDF document block, if it carries its data."""
    source = block.get("source") if block.get("type") == "document" else None
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def payload_key(block: dict[str, Any]) -> tuple[str, str] | None:
    """What tells an image or a document apart from another: its kind and its payload."""
    kind = block.get("type")
    if kind == "image":
        data = base64_data(block)
        return None if data is None else ("image", data)
    if kind != "document":
        return None
    data = document_data(block)
    if data is not None:
        return ("document", data)
    source = block.get("source")
    url = source.get("url") if isinstance(source, dict) and source.get("type") == "url" else None
    return ("document-url", url) if isinstance(url, str) else None


def share_data(blocks: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` whose images and documents already in ``known`` take the text known there: one
    attached again is held once (the copy just made is let go)."""
    held = {data: data for block in known if (data := base64_data(block) or document_data(block)) is not None}
    shared = []
    for block in blocks:
        data = base64_data(block) or document_data(block)
        if data is not None and (same := held.get(data)) is not None and same is not data:
            block = {**block, "source": {**block["source"], "data": same}}
        shared.append(block)
    return shared
