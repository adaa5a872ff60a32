"""What the stand-in answers from the documents a request carries: a cited answer.

When a request's documents have citations enabled, the answer quotes the sentences of the
documents that share the most words with the question (the first sentence of the newest
document when none does), each in a text block of its own that carries its citation, as the
API streams a cited answer: a ``char_location`` into a text document's own text, a
``page_location`` (the page's number) for a PDF, whose text is read from its content streams
(:func:`~claude_magic.testing.pdf.page_texts`). A PDF page without text, or a PDF the API
would fetch by URL, is cited by its number with no text.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from .answers import STAND_IN_NOTE, Part, question_of
from .pdf import page_texts

MOST_CITED = 2
"""Sentences a cited answer quotes at most."""
_SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?](?=\s|$)|(?=\n|$))")
"""A sentence: to a full stop (or ``!``, ``?``) before a blank or the end, or to the line's end."""
_WORD = re.compile(r"[a-z0-9]{3,}")


@dataclass(frozen=True)
class Passage:
    """A sentence of a document, and the citation that points at it."""

    text: str
    citation: dict[str, Any]


def cited_answer(body: dict[str, Any]) -> list[Part] | None:
    """The parts of a cited answer, or None when the request has no document with citations on."""
    documents = [b for m in body["messages"] if isinstance(m.get("content"), list) for b in m["content"] if isinstance(b, dict) and b.get("type") == "document"]
    if not any((d.get("citations") or {}).get("enabled") for d in documents):
        return None
    question = question_of(body["messages"][-1].get("content", ""))
    passages = [p for index, document in enumerate(documents) for p in _passages(document, index)]
    chosen = _most_relevant(passages, question) or [passages[-1]]
    preview = " ".join(question.split())[:200]
    parts = [Part(f"**Cited stand-in answer** to: “{preview}”:\n\n")]
    parts += [Part(f"{passage.text} ", (passage.citation,)) for passage in chosen]
    return [*parts, Part(f"\n\n{STAND_IN_NOTE}")]


def _most_relevant(passages: list[Passage], question: str) -> list[Passage]:
    """Up to :data:`MOST_CITED` sentences (of three words or more) sharing words with the
    question, most first (then in order)."""
    asked = set(_WORD.findall(question.lower()))
    sentences = [p for p in passages if len(p.text.split()) >= 3]  # not headings
    scored = [(len(asked & set(_WORD.findall(p.text.lower()))), -i, p) for i, p in enumerate(sentences)]
    return [p for score, _, p in sorted(scored, key=lambda s: (s[0], s[1]), reverse=True)[:MOST_CITED] if score > 0]


def _passages(document: dict[str, Any], index: int) -> list[Passage]:
    source = document.get("source") or {}
    title = document.get("title")
    if source.get("type") == "text":
        text = str(source.get("data", ""))
        return [Passage(m[0].strip(), _char_location(text, m, index, title)) for m in _SENTENCE.finditer(text)]
    pages = _pdf_pages(source)
    passages = [
        Passage(m[0].strip(), _page_location(m[0].strip(), number, index, title))
        for number, page in enumerate(pages, 1)
        for m in _SENTENCE.finditer(page)
    ]
    return passages or [Passage(f"(page 1 of {title or 'the document'})", _page_location("", 1, index, title))]


def _pdf_pages(source: dict[str, Any]) -> list[str]:
    if source.get("type") != "base64":
        return []
    try:
        return page_texts(base64.b64decode(str(source.get("data", ""))))
    except (binascii.Error, ValueError):
        return []


def _char_location(text: str, match: re.Match[str], index: int, title: str | None) -> dict[str, Any]:
    start = match.start() + (len(match[0]) - len(match[0].lstrip()))
    end = match.end() - (len(match[0]) - len(match[0].rstrip()))
    return {"type": "char_location", "cited_text": text[start:end], "document_index": index, "document_title": title, "start_char_index": start, "end_char_index": end}


def _page_location(cited: str, page: int, index: int, title: str | None) -> dict[str, Any]:
    return {"type": "page_location", "cited_text": cited, "document_index": index, "document_title": title, "start_page_number": page, "end_page_number": page + 1}
