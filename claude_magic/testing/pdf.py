"""Small text PDFs, written and read back, for the stand-in, the tests and the example notebooks.

:func:`write_pdf` writes a valid PDF (one page per string, its lines in Helvetica) without a
PDF library, so a test or a notebook can make the document it asks about. :func:`page_texts` is
how the stand-in reads a PDF it is sent: the text the pages' content streams draw (``Tj``,
``TJ``, ``'`` and ``"``, with a line break at each move to a new line), in the order of the page
tree; a page that draws no text (a scan, a Pillow image) reads as empty, and is cited by number.
"""

from __future__ import annotations

import re
import zlib

from ..api.pdf import PdfObject, objects_of

_REFERENCE = re.compile(rb"(\d+)\s+\d+\s+R")


def write_pdf(pages: list[str], *, compress: bool = False) -> bytes:
    """A PDF whose page N shows the lines of ``pages[N]`` (Latin-1; other characters become ``?``);
    ``compress``: its content streams Flate-compressed, as most writers do."""
    font, tree = 3 + 2 * len(pages), 2
    bodies = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    bodies[tree] = f"<< /Type /Pages /Count {len(pages)} /Kids [ {kids} ] >>".encode()
    for i, text in enumerate(pages):
        page, contents = 3 + 2 * i, 4 + 2 * i
        bodies[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [ 0 0 612 792 ] /Contents {contents} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>"
        ).encode()
        bodies[contents] = _stream(_drawing(text), compress)
    bodies[font] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    return _assembled(bodies)


def _drawing(text: str) -> bytes:
    lines = text.split("\n")
    shown = b" T* ".join(b"(" + _escaped(line) + b") Tj" for line in lines)
    return b"BT /F1 11 Tf 14 TL 72 740 Td " + shown + b" ET"


def _escaped(line: str) -> bytes:
    raw = line.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _stream(content: bytes, compress: bool) -> bytes:
    data = zlib.compress(content) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    return b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(data), flate, data)


def _assembled(bodies: dict[int, bytes]) -> bytes:
    """The objects with a header, a cross-reference table and a trailer, as a reader expects."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(bodies):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, bodies[number])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in sorted(bodies))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return bytes(out)


# --- reading ---------------------------------------------------------------------------------------


def page_texts(data: bytes) -> list[str]:
    """The text each page of a PDF draws, in page order (an empty string for a page without text)."""
    objects = objects_of(data)
    return [_page_text(page, objects) for page in _pages(objects)]


def _pages(objects: dict[int, PdfObject]) -> list[PdfObject]:
    """The page objects in the page tree's order (from the catalog's ``/Pages``), or in the file's
    order when there is no tree to follow."""
    catalog = next((o for o in objects.values() if o.type == "Catalog"), None)
    root = re.search(rb"/Pages\s+(\d+)\s+\d+\s+R", catalog.dictionary) if catalog is not None else None
    if root is None:
        return [o for o in objects.values() if o.type == "Page"]
    pages: list[PdfObject] = []
    _walk(objects.get(int(root[1])), objects, pages, depth=0)
    return pages


def _walk(node: PdfObject | None, objects: dict[int, PdfObject], pages: list[PdfObject], depth: int) -> None:
    if node is None or depth > 32:
        return
    if node.type == "Page":
        pages.append(node)
        return
    kids = re.search(rb"/Kids\s*\[(.*?)\]", node.dictionary, re.DOTALL)
    for reference in _REFERENCE.finditer(kids[1] if kids else b""):
        _walk(objects.get(int(reference[1])), objects, pages, depth + 1)


def _page_text(page: PdfObject, objects: dict[int, PdfObject]) -> str:
    contents = re.search(rb"/Contents\s*(\[.*?\]|\d+\s+\d+\s+R)", page.dictionary, re.DOTALL)
    streams = [objects.get(int(r[1])) for r in _REFERENCE.finditer(contents[1])] if contents else []
    drawn = b"\n".join(s.stream for s in streams if s is not None and s.stream is not None)
    return _shown_text(drawn)


_TOKEN = re.compile(rb"\((?:\\.|[^\\)])*\)|<<|>>|<[0-9A-Fa-f\s]*>|[A-Za-z'\"*]+|[^\s()<>\[\]/]+|\S", re.DOTALL)
_SHOW = {b"Tj", b"TJ"}
_NEXT_LINE_THEN_SHOW = {b"'", b'"'}
_NEXT_LINE = {b"Td", b"TD", b"T*", b"BT", b"ET"}


def _shown_text(content: bytes) -> str:
    """The strings a content stream shows, a line break at each move to the next line. Strings
    are the operands of the operator that follows them: collected, then shown (or dropped)."""
    lines: list[str] = []
    line: list[str] = []
    operands: list[str] = []

    def next_line() -> None:
        if line:
            lines.append("".join(line))
            line.clear()

    for token in _TOKEN.findall(content):
        if token.startswith(b"(") and token.endswith(b")"):
            operands.append(_literal(token[1:-1]))
        elif token.startswith(b"<") and token.endswith(b">") and token not in (b"<<", b">>"):
            operands.append(bytes.fromhex(token[1:-1].decode("ascii")).decode("latin-1"))
        elif token[:1].isalpha() or token in _NEXT_LINE_THEN_SHOW:
            if token in _NEXT_LINE or token in _NEXT_LINE_THEN_SHOW:
                next_line()
            if token in _SHOW or token in _NEXT_LINE_THEN_SHOW:
                line.extend(operands)
            operands.clear()
    next_line()
    return "\n".join(lines)


_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"\n": b""}


def _literal(raw: bytes) -> str:
    """A PDF literal string's text: escapes and octal codes resolved, read as Latin-1."""

    def unescape(match: re.Match[bytes]) -> bytes:
        code = match[1]
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(unescape, raw).decode("latin-1")
