"""The image formats the API takes, and their limits: media types from file signatures, and
sizes from headers, without Pillow (so the stand-in, the budget and attachments share them).
"""

from __future__ import annotations

import base64
import struct

MAX_ENCODED_BYTES = 5 * 1024 * 1024
"""The API's per-image limit, applied to the base64 text."""
MAX_IMAGES_PER_REQUEST = 100
"""The API's limit for 200K-context models (1M-context models take 600): the safe figure."""
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_media_type(data: bytes) -> str | None:
    """The media type of PNG, JPEG, GIF or WebP bytes, from their signature."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes | str) -> tuple[int, int]:
    """Width and height read from a PNG, GIF, JPEG or WebP header (bytes or base64), without
    Pillow; (0, 0) when the header can't be read."""
    raw = base64.b64decode(data[:200_000]) if isinstance(data, str) else data
    media_type = sniff_media_type(raw)
    if media_type == "image/png" and len(raw) >= 24:
        return struct.unpack(">II", raw[16:24])
    if media_type == "image/gif" and len(raw) >= 10:
        return struct.unpack("<HH", raw[6:10])
    if media_type == "image/webp":
        return _webp_size(raw)
    if media_type == "image/jpeg":
        return _jpeg_size(raw)
    return (0, 0)


def _jpeg_size(raw: bytes) -> tuple[int, int]:
    position = 2
    while position + 9 < len(raw):
        if raw[position] != 0xFF:
            return (0, 0)
        marker = raw[position + 1]
        length = struct.unpack(">H", raw[position + 2 : position + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", raw[position + 5 : position + 9])
            return (width, height)
        position += 2 + length
    return (0, 0)


def _webp_size(raw: bytes) -> tuple[int, int]:
    chunk = raw[12:16]
    if chunk == b"VP8X" and len(raw) >= 30:
        return (1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little"))
    if chunk == b"VP8 " and len(raw) >= 30:
        width, height = struct.unpack("<HH", raw[26:30])
        return (width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(raw) >= 25:
        bits = int.from_bytes(raw[21:25], "little")
        return (1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF))
    return (0, 0)
