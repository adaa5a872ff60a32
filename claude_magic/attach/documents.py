"""Documents for Claude to read (and cite): PDFs and text files as the API's ``document`` blocks.

Sources: a path to a ``.pdf``, ``.txt``, ``.md``, ``.csv`` or ``.json`` file (a string or a
``pathlib.Path``), PDF bytes, or an ``https://`` URL of a PDF (the API fetches it). A PDF is
sent as base64, text as a plain-text source, a URL as a URL source, each titled with its name.
The API's limits are checked before anything is sent, each refusal saying which limit and by
how much: a PDF is not encrypted, has at most 100 pages (all the documents of a question
together), and its base64 fits in the 32 MB a request may hold.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..api import pdf
from ..api.errors import ClaudeError

TEXT_SUFFIXES = {".txt": "text", ".md": "Markdown", ".csv": "CSV", ".json": "JSON"}
DOCUMENT_SUFFIXES = frozenset({".pdf", *TEXT_SUFFIXES})
_MB = 1_000_000


class DocumentError(ClaudeError):
    """A document that can't be read or is beyond the API's limits; nothing is sent."""


@dataclass(frozen=True)
class PreparedDocument:
    """A document ready to send: its title, the block's source, and what it holds."""

    title: str
    kind: str
    """``PDF``, ``text``, ``Markdown``, ``CSV``, ``JSON``, or ``PDF by URL``."""
    source: dict[str, Any]
    pages: int | None = None
    """A PDF's pages (None: not a PDF, or one the API fetches)."""
    size: int = 0
    """Bytes of the file (0 for a URL, which the API fetches)."""

    def block(self) -> dict[str, Any]:
        return {"type": "document", "source": self.source, "title": self.title}

    def describe(self) -> str:
        if self.source["type"] == "url":
            return "fetched by the API; pages and size unknown until then"
        pages = f"{self.pages:,} page{'s' if self.pages != 1 else ''}, " if self.pages is not None else ""
        return f"{pages}{self.size:,} bytes"

    def estimated_tokens(self) -> int:
        """A local estimate: :data:`~claude_magic.api.pdf.PAGE_TOKENS` a PDF page, ~4 characters a token of text."""
        if self.pages is not None:
            return self.pages * pdf.PAGE_TOKENS
        return max(1, len(self.source.get("data", "")) // 4) if self.source["type"] == "text" else pdf.PAGE_TOKENS


def names_document(obj: Any) -> bool:
    """A ``pathlib.Path`` with a document's suffix, or a string naming an existing such file."""
    if isinstance(obj, Path):
        return obj.suffix.lower() in DOCUMENT_SUFFIXES
    return isinstance(obj, str) and "\n" not in obj and Path(obj).suffix.lower() in DOCUMENT_SUFFIXES and Path(obj).expanduser().is_file()


def is_pdf_bytes(obj: Any) -> bool:
    return isinstance(obj, (bytes, bytearray, memoryview)) and pdf.is_pdf(bytes(obj[:1024]))


def is_pdf_url(obj: Any) -> bool:
    """An ``https://`` URL whose path ends in ``.pdf``."""
    return isinstance(obj, str) and is_https_url(obj) and urlsplit(obj).path.lower().endswith(".pdf")


def is_https_url(text: str) -> bool:
    return text.startswith("https://") and not any(c.isspace() for c in text) and bool(urlsplit(text).netloc)


def from_file(path: str | Path) -> PreparedDocument:
    """A PDF or text file, titled with its file name."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DocumentError(f"can't read the document {str(path)!r}: {exc.strerror or exc}") from None
    if file.suffix.lower() == ".pdf":
        return from_pdf_bytes(data, file.name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"can't read {file.name} as UTF-8 text (byte {exc.start:,} is not UTF-8)") from None
    return from_text(text, file.name, TEXT_SUFFIXES.get(file.suffix.lower(), "text"))


def from_text(text: str, title: str, kind: str = "text") -> PreparedDocument:
    size = len(text.encode("utf-8"))
    if size > pdf.MAX_PDF_BASE64:
        raise DocumentError(f"can't attach {title}: it is {_mb(size)}, {_mb(size - pdf.MAX_PDF_BASE64)} more than the 32 MB a request to the API may hold")
    return PreparedDocument(title, kind, {"type": "text", "media_type": pdf.TEXT_MEDIA_TYPE, "data": text}, size=size)


def from_pdf_bytes(data: bytes, title: str) -> PreparedDocument:
    """PDF bytes, checked against the API's limits: not encrypted, at most 100 pages, its base64
    within a request's 32 MB."""
    if not pdf.is_pdf(data):
        raise DocumentError(f"can't attach {title}: it is not a PDF (no %PDF- header)")
    if pdf.is_encrypted(data):
        raise DocumentError(f"can't attach {title}: it is encrypted or password-protected, and the API takes only standard PDFs")
    pages = pdf.page_count(data)
    if pages > pdf.MAX_PDF_PAGES:
        raise DocumentError(f"can't attach {title}: it has {pages:,} pages, {pages - pdf.MAX_PDF_PAGES:,} more than the {pdf.MAX_PDF_PAGES} the API takes in a request")
    encoded = base64.b64encode(data).decode("ascii")
    if len(encoded) > pdf.MAX_PDF_BASE64:
        excess = len(encoded) - pdf.MAX_PDF_BASE64
        raise DocumentError(f"can't attach {title}: as base64 it is {_mb(len(encoded))}, {_mb(excess)} more than the 32 MB a request to the API may hold")
    return PreparedDocument(title, "PDF", {"type": "base64", "media_type": pdf.PDF_MEDIA_TYPE, "data": encoded}, pages=pages, size=len(data))


def from_url(url: str) -> PreparedDocument:
    """A PDF the API fetches from ``url`` (https only), titled with the file name in its path."""
    if not is_https_url(url):
        raise DocumentError(f"can't attach {url!r}: a document by URL must be an https:// address")
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or urlsplit(url).netloc
    return PreparedDocument(name, "PDF by URL", {"type": "url", "url": url})


def check_totals(documents: list[PreparedDocument]) -> None:
    """The documents of one question together: at most 100 PDF pages, within a request's 32 MB."""
    pages = sum(d.pages or 0 for d in documents)
    if pages > pdf.MAX_PDF_PAGES:
        raise DocumentError(f"the documents attached have {pages:,} pages together, {pages - pdf.MAX_PDF_PAGES:,} more than the {pdf.MAX_PDF_PAGES} the API takes in a request")
    size = sum(len(d.source.get("data", "")) for d in documents)
    if size > pdf.MAX_PDF_BASE64:
        raise DocumentError(f"the documents attached take {_mb(size)} together, {_mb(size - pdf.MAX_PDF_BASE64)} more than the 32 MB a request to the API may hold")


def _mb(size: int) -> str:
    return f"{size / _MB:,.1f} MB"
