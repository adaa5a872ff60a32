"""Image blocks in the conversation: each image held once in memory and sent once a request.

An image attached again takes the text the conversation already holds (:func:`share_data`),
and a request carries each image once, later copies becoming a short note
(:func:`drop_repeated_images`). Images are told apart by their base64 text itself.
"""

from __future__ import annotations

from typing import Any

REPEATED_IMAGE_NOTE = "(the same image as one earlier in this conversation)"


def drop_repeated_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each image sent once: a later copy of an image becomes a short note.

    Works on what is actually sent (after the context budget has left turns out), so an image
    whose first copy was left out is sent in full again. The messages given are not changed.
    Images are told apart by their base64 text itself, whose hash Python keeps with the text:
    an image is hashed once in its life, not once a question.
    """
    seen: set[str] = set()
    result = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            result.append(message)
            continue
        blocks = []
        for block in content:
            data = base64_data(block)
            if data is not None and data in seen:
                block = {"type": "text", "text": REPEATED_IMAGE_NOTE}
            elif data is not None:
                seen.add(data)
            blocks.append(block)
        result.append({**message, "content": blocks})
    return result


def base64_data(block: dict[str, Any]) -> str | None:
    """The base64 text of an image block, if it carries its data."""
    source = block.get("source") if block.get("type") == "image" else None
    if isinstance(source, dict) and source.get("type", "base64") == "base64" and isinstance(source.get("data"), str):
        return str(source["data"])
    return None


def share_data(blocks: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` whose images already in ``known`` take the text known there: an image
    attached again is held once (the copy just made is let go)."""
    held = {data: data for block in known if (data := base64_data(block)) is not None}
    shared = []
    for block in blocks:
        data = base64_data(block)
        if data is not None and (same := held.get(data)) is not None and same is not data:
            block = {**block, "source": {**block["source"], "data": same}}
        shared.append(block)
    return shared
