"""Citations shown the way a reader checks an answer: a numbered marker at each cited passage,
and under the answer its sources (document title and page or character range, or the web page
linked), with the cited text, collapsed when it is long.

Everything in a source comes from the model or a server (titles, cited text, URLs) and is data:
it is written as escaped text, a URL is linked only when it is http(s), percent-encoded so that
no quote, ``$`` or angle bracket of it reaches the page. The markers are the caller's own markup
(``<sup>1</sup>``), placed at offsets into the answer's text and never read from it: the text is
cut at the offsets (:func:`marked_pieces`) and each piece made safe as answer text is.

The same sources are written for the notebook (HTML in the Markdown output, which JupyterLab
and VS Code render), for the chat panel (HTML for MathJax's widget, a ``$`` escaped its way),
and as plain text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

Cited = Sequence[tuple[dict[str, Any], int]]
"""Citations and the offsets in the answer's text where their cited passage ends."""
LONG_CITED_TEXT = 160
"""Cited text longer than this is collapsed under its beginning."""
SCOPE = "claude-sources"


@dataclass(frozen=True)
class Source:
    """Where a cited passage comes from, as a reader looks it up."""

    title: str
    where: str
    """``page 2``, ``pages 2–3``, ``characters 10–52``, ``blocks 1–2`` (empty for a web page)."""
    cited_text: str
    url: str | None = None

    @classmethod
    def of(cls, citation: dict[str, Any]) -> Source:
        kind = citation.get("type")
        cited = " ".join(str(citation.get("cited_text") or "").split())
        if kind in ("web_search_result_location", "search_result_location"):
            url = str(citation.get("url") or citation.get("source") or "")
            return cls(str(citation.get("title") or url or "a web page"), "", cited, url or None)
        return cls(str(citation.get("document_title") or f"document {int(citation.get('document_index') or 0) + 1}"), _where(citation), cited)


def _where(citation: dict[str, Any]) -> str:
    """``page 2`` or ``pages 2–3`` (the API's last page number is one past the range), or the
    range of characters or content blocks as the API gives it (from 0, end excluded)."""
    kind = citation.get("type")
    if kind == "page_location":
        start, end = citation.get("start_page_number"), citation.get("end_page_number")
        if not isinstance(start, int):
            return ""
        return f"pages {start}–{end - 1}" if isinstance(end, int) and end - 1 > start else f"page {start}"
    names = {"char_location": ("characters", "char"), "content_block_location": ("blocks", "block")}
    if kind not in names:
        return ""
    label, key = names[kind]
    start, end = citation.get(f"start_{key}_index"), citation.get(f"end_{key}_index")
    return f"{label} {start:,}–{end:,}" if isinstance(start, int) and isinstance(end, int) else ""


class Sources:
    """The sources of one answer, numbered in the order they are first cited (a passage cited
    again keeps its number)."""

    def __init__(self, cited: Cited = ()) -> None:
        self.sources: list[Source] = []
        self.markers: list[tuple[int, list[int]]] = []
        """Each offset with a marker, and the numbers it shows, in order."""
        for citation, at in cited:
            self.add(citation, at)

    def add(self, citation: dict[str, Any], at: int) -> int:
        """Number the citation's source (its marker at ``at``); returns the number."""
        source = Source.of(citation)
        if source not in self.sources:
            self.sources.append(source)
        number = self.sources.index(source) + 1
        if self.markers and self.markers[-1][0] == at:
            if number not in self.markers[-1][1]:
                self.markers[-1][1].append(number)
        else:
            self.markers.append((at, [number]))
        return number

    def __bool__(self) -> bool:
        return bool(self.sources)

    # --- the notebook's Markdown, the panel's HTML --------------------------------------------------

    def html(self, dollar: str = "\\$") -> str:
        """The sources as one line of HTML (an HTML block in Markdown ends at a blank line); a
        ``$`` written as ``dollar``: ``\\$`` where MathJax typesets the page (it shows a dollar
        there, with ``processEscapes``), an entity where nothing does."""
        items = "".join(f"<li>{_entry(source, dollar)}</li>" for source in self.sources)
        return f'<div class="{SCOPE}"><b>Sources</b><ol>{items}</ol></div>'

    def plain(self) -> str:
        lines = [f"[{n}] {s.title}{f', {s.where}' if s.where else ''}{f' <{s.url}>' if s.url else ''}: “{s.cited_text}”" for n, s in enumerate(self.sources, 1)]
        return "\n".join(["Sources:", *lines])


def marker(numbers: list[int]) -> str:
    return f"<sup>{','.join(map(str, numbers))}</sup>"


def plain_marker(numbers: list[int]) -> str:
    return f"[{','.join(map(str, numbers))}]"


def marked_pieces(text: str, sources: Sources) -> list[str | list[int]]:
    """``text`` cut at the markers' offsets (a marker goes before the blanks a passage ends
    with): its pieces, and between them the numbers to show."""
    pieces: list[str | list[int]] = []
    done = 0
    for at, numbers in sources.markers:
        at = min(max(at, done), len(text))
        while at > done and text[at - 1] in " \t":  # after the passage's last word, before the space that ends it
            at -= 1
        pieces += [text[done:at], numbers]
        done = at
    return [*pieces, text[done:]]


def plain_text(text: str, sources: Sources) -> str:
    """The answer with ``[1]`` markers and its sources listed under it, as plain text."""
    if not sources:
        return text
    marked = "".join(p if isinstance(p, str) else plain_marker(p) for p in marked_pieces(text, sources))
    return f"{marked}\n\n{sources.plain()}"


def _entry(source: Source, dollar: str) -> str:
    name = html_link(source.title, source.url, dollar) if source.url else f"<b>{html_text(source.title, dollar)}</b>"
    head = " · ".join([name, *([html_text(source.where, dollar)] if source.where else [])])
    if not source.cited_text:
        return head
    if len(source.cited_text) <= LONG_CITED_TEXT:
        return f"{head} · “{html_text(source.cited_text, dollar)}”"
    start = source.cited_text[: LONG_CITED_TEXT // 2].rsplit(" ", 1)[0]
    return f"<details><summary>{head} · “{html_text(start, dollar)}…”</summary>“{html_text(source.cited_text, dollar)}”</details>"


def html_text(text: str, dollar: str = "\\$") -> str:
    """Data as HTML text on one line: escaped, a backslash as an entity and a ``$`` as ``dollar``
    (no math, nor a blank line that would end the HTML, can start in it)."""
    return html.escape(" ".join(text.split())).replace("\\", "&#92;").replace("$", dollar)


def html_link(text: str, url: str, dollar: str = "\\$") -> str:
    """``text`` linking to ``url`` (opened in a new tab) when it is http(s); otherwise both shown as text."""
    link = safe_url(url)
    if link is None:
        return f"<b>{html_text(text, dollar)}</b> ({html_text(url, dollar)})"
    return f'<a href="{html.escape(link)}" target="_blank" rel="noopener noreferrer">{html_text(text, dollar)}</a>'


_URL_SAFE = "/:?#[]@!&()*+,;=%-._~"
"""Characters a linked URL keeps as they are; every other one (quotes, ``$``, ``<``, spaces,
backslashes, non-ASCII) is percent-encoded."""


def safe_url(url: str) -> str | None:
    """``url`` fit to be a link target: http(s) only (None otherwise), percent-encoded."""
    url = url.strip()
    try:
        if re.match(r"https?://", url, re.IGNORECASE) is None or not urlsplit(url).netloc:
            return None
    except ValueError:  # a malformed host ("https://[x")
        return None
    return quote(url, safe=_URL_SAFE)
