"""PDFs as the API takes them: their limits, and what a PDF's bytes say of itself (is it one,
how many pages, is it encrypted), read without a PDF library, so that attachments, the context
budget and the stand-in share one reading.

A PDF is a set of numbered objects (``7 0 obj << … >> endobj``), some of them packed into
compressed object streams (PDF 1.5 and later). The page count is the ``/Count`` of the page
tree's root (the largest ``/Count`` of a ``/Type /Pages`` object), or else the number of
distinct ``/Type /Page`` objects. This reads the PDFs that writers produce (Pillow, LaTeX,
office suites, browsers' print to PDF); a PDF it can't read counts no page, and the API then
has the last word.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from .settings import MAX_REQUEST_BYTES

PDF_MEDIA_TYPE = "application/pdf"
TEXT_MEDIA_TYPE = "text/plain"
MAX_PDF_PAGES = 100
"""Pages of PDF the API takes in one request, all its documents together."""
PAGE_TOKENS = 2_000
"""A local estimate of a PDF page's input tokens: the API reads each page as an image (about
1,600 tokens) and as its text."""
MAX_PDF_BASE64 = MAX_REQUEST_BYTES
"""A PDF is sent as base64 in the request body, which holds at most 32 MB."""

_OBJECT = re.compile(rb"(\d+)\s+(\d+)\s+obj\b(.*?)\bendobj", re.DOTALL)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\n?endstream", re.DOTALL)
_TYPE = re.compile(rb"/Type\s*/(\w+)")
_COUNT = re.compile(rb"/Count\s+(\d+)")


@dataclass(frozen=True)
class PdfObject:
    number: int
    dictionary: bytes
    """The object's text before any stream (its dictionary, or its value)."""
    stream: bytes | None
    """The stream's bytes, decompressed where they were Flate-compressed (None: no stream)."""

    @property
    def type(self) -> str | None:
        match = _TYPE.search(self.dictionary)
        return match[1].decode("latin-1") if match else None


def is_pdf(data: bytes) -> bool:
    """PDF bytes start with ``%PDF-`` (within the first kilobyte, as readers allow)."""
    return b"%PDF-" in data[:1024]


def is_encrypted(data: bytes) -> bool:
    """An encrypted (or password-protected) PDF names its ``/Encrypt`` dictionary in its trailer."""
    return re.search(rb"/Encrypt\b", data) is not None


def page_count(data: bytes) -> int:
    """The number of pages of a PDF (0 when it can't be read)."""
    objects = objects_of(data)
    counts = [int(m[1]) for o in objects.values() if o.type == "Pages" and (m := _COUNT.search(o.dictionary))]
    if counts:
        return max(counts)
    return sum(1 for o in objects.values() if o.type == "Page")


@lru_cache(maxsize=32)
def base64_page_count(data: str) -> int:
    """:func:`page_count` of a PDF as its base64 text stands in a request; remembered, since the
    context budget measures the same question before every request (a string keeps its hash)."""
    try:
        return page_count(base64.b64decode(data))
    except (binascii.Error, ValueError):
        return 0


def objects_of(data: bytes) -> dict[int, PdfObject]:
    """Every object of the PDF by number (a later definition, from an incremental update, wins),
    those packed in object streams included."""
    objects: dict[int, PdfObject] = {}
    for match in _OBJECT.finditer(data):
        objects[int(match[1])] = _object(int(match[1]), match[3])
    for holder in [o for o in objects.values() if o.type == "ObjStm" and o.stream is not None]:
        for number, text in _packed(holder):
            objects.setdefault(number, _object(number, text))
    return objects


def _object(number: int, body: bytes) -> PdfObject:
    stream = _STREAM.search(body)
    if stream is None:
        return PdfObject(number, body, None)
    dictionary = body[: stream.start()]
    return PdfObject(number, dictionary, _decoded(dictionary, stream[1]))


def _decoded(dictionary: bytes, raw: bytes) -> bytes:
    """A stream's bytes, inflated when its filter is Flate (raw when that fails or is another filter)."""
    if b"/FlateDecode" not in dictionary:
        return raw
    try:
        return zlib.decompressobj().decompress(raw)
    except zlib.error:
        return raw


def _packed(holder: PdfObject) -> Iterator[tuple[int, bytes]]:
    """The objects an object stream holds: ``/N`` pairs of (number, offset) then their texts from ``/First``."""
    first = re.search(rb"/First\s+(\d+)", holder.dictionary)
    assert holder.stream is not None
    if first is None:
        return
    start = int(first[1])
    numbers = [int(n) for n in holder.stream[:start].split()]
    pairs = list(zip(numbers[::2], numbers[1::2]))
    for i, (number, offset) in enumerate(pairs):
        end = start + pairs[i + 1][1] if i + 1 < len(pairs) else len(holder.stream)
        yield number, holder.stream[start + offset : end]
