"""``%claude export PATH``: the conversation as Markdown or JSON (by the file's extension).

JSON holds every exchange exactly as it is sent back to the API (images as base64 blocks),
with its cell, model and usage, and :func:`read_json` gives the exchanges back. Markdown is
for reading: each turn's question and answer, its images written as files in a ``<name>_files``
folder beside it, linked relatively, and the sources its answers cite as footnotes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..api.errors import ClaudeError
from ..api.redaction import remember, scrub
from ..core.server_tools import CALL_TYPES, RESULT_TYPES, ServerCall
from ..core.store import IMAGE_EXTENSIONS, now
from ..ui.citations import Source, safe_url
from ..ui.server_calls import summary

if TYPE_CHECKING:
    from ..core.conversation import Conversation, Exchange

FORMAT = "claude-magic-conversation"
VERSION = 1


class ExportError(ClaudeError):
    """The conversation could not be written (or read back) as asked."""


def export(conversation: Conversation, path: str | Path, notebook: str | None = None, secrets: Iterable[str] = ()) -> Path:
    """Write ``conversation`` to ``path``; the extension (.md, .markdown, .json) picks the format.
    Credentials (those in use, and ``secrets``) are scrubbed from the text, as in the store."""
    target = Path(path).expanduser()
    formats = {".md": _markdown, ".markdown": _markdown, ".json": _json}
    render = formats.get(target.suffix.lower())
    if render is None:
        raise ExportError(f"can't export to {str(path)!r}: name a .md or .json file")
    remember(secrets)
    try:
        target.write_text(scrub(render(conversation.exchanges, target, notebook)), encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"can't write {target}: {exc.strerror or exc}") from None
    return target


# --- JSON ----------------------------------------------------------------------------------------


def _json(exchanges: list[Exchange], target: Path, notebook: str | None) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "notebook": notebook,
        "exported": now(),
        "exchanges": [_exchange_record(e) for e in exchanges],
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def _exchange_record(exchange: Exchange) -> dict[str, Any]:
    record = exchange.to_event([])
    for name in ("event", "id", "replaces"):
        record.pop(name)
    return record


def read_json(path: str | Path) -> list[Exchange]:
    """The exchanges of a JSON export."""
    from ..core.conversation import Exchange

    try:
        document = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"can't read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportError(f"{path} is not a claude-magic conversation export")
    return [Exchange.from_event(record) for record in document.get("exchanges", [])]


# --- Markdown ------------------------------------------------------------------------------------


def _markdown(exchanges: list[Exchange], target: Path, notebook: str | None) -> str:
    """The Markdown text; its images are written beside ``target`` on the way, its answers'
    sources become footnotes (numbered across the document)."""
    images = _ImageFolder(target)
    footnotes = _Footnotes()
    lines = ["# Conversation with Claude", ""]
    about = [f"notebook `{notebook}`"] if notebook else []
    lines += [" · ".join([*about, f"exported {now()}", f"{len(exchanges)} turns"]), ""]
    for number, exchange in enumerate(exchanges, 1):
        cell = f" · cell [{exchange.cell.execution_count}]" if exchange.cell.execution_count is not None else ""
        lines += ["---", "", f"## {number}{cell}", "", "**Question**", ""]
        lines += _blocks_markdown(exchange.question, images)
        cut = " (cut off)" if not exchange.complete else ""
        lines += [f"**Answer** · {exchange.model}{cut}", ""]
        lines += _answer_markdown(exchange.answer, images, footnotes)
    return "\n".join(lines)


def _answer_markdown(blocks: list[dict[str, Any]], images: _ImageFolder, footnotes: _Footnotes) -> list[str]:
    """An answer's blocks in order: consecutive text blocks as one piece (each cited passage
    followed by its footnote references), each call the API ran as one line, then the footnotes
    the answer cites."""
    first = len(footnotes.lines)
    lines: list[str] = []
    run: list[str] = []
    for block in blocks:
        if block.get("type") == "text":
            run.append(_cited(block.get("text", ""), [footnotes.number(c) for c in block.get("citations") or []]))
            continue
        if run:
            lines += ["".join(run), ""]
            run = []
        if block.get("type") in RESULT_TYPES:
            call = next((b for b in blocks if b.get("type") in CALL_TYPES and b.get("id") == block.get("tool_use_id")), {})
            lines += [f"*{_escaped(summary(ServerCall(call, block)))}*", ""]
        elif block.get("type") not in CALL_TYPES:
            lines += _blocks_markdown([block], images)
    if run:
        lines += ["".join(run), ""]
    cited = footnotes.lines[first:]
    return [*lines, *cited, ""] if cited else lines


def _cited(text: str, numbers: list[int]) -> str:
    """A passage with its footnote references after its last word."""
    if not numbers:
        return text
    passage = text.rstrip(" \t")
    return passage + "".join(f"[^{n}]" for n in numbers) + text[len(passage) :]


def _blocks_markdown(blocks: list[dict[str, Any]], images: _ImageFolder) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            lines += [block.get("text", ""), ""]
        elif kind == "image":
            lines += [images.link(block), ""]
        elif kind == "document":
            lines += [f"*[document: {_escaped(str(block.get('title') or 'untitled'))}]*", ""]
        elif kind not in ("thinking", "redacted_thinking"):
            lines += [f"*[{kind} block]*", ""]
    return lines


class _Footnotes:
    """The sources of the answers as Markdown footnotes, numbered across the document: a source
    cited again (the same place, the same text) keeps its number."""

    def __init__(self) -> None:
        self._numbers: dict[Source, int] = {}
        self.lines: list[str] = []

    def number(self, citation: dict[str, Any]) -> int:
        source = Source.of(citation)
        if source not in self._numbers:
            self._numbers[source] = len(self._numbers) + 1
            self.lines.append(f"[^{self._numbers[source]}]: {_footnote(source)}")
        return self._numbers[source]


def _footnote(source: Source) -> str:
    link = safe_url(source.url) if source.url else None
    title = f"[{_escaped(source.title)}](<{link}>)" if link else _escaped(source.title)
    where = f", {source.where}" if source.where else ""
    cited = f": “{_escaped(source.cited_text)}”" if source.cited_text else ""
    return f"{title}{where}{cited}"


def _escaped(text: str) -> str:
    """Text from a model or a server as literal Markdown on one line."""
    return re.sub(r"([\\`*_\[\]<>|&$])", r"\\\1", " ".join(text.split()))


class _ImageFolder:
    """``<name>_files/`` beside the Markdown file: each image written once, by content."""

    def __init__(self, document: Path) -> None:
        self.folder = document.with_name(f"{document.stem}_files")

    def link(self, block: dict[str, Any]) -> str:
        source = block.get("source") or {}
        if source.get("type") != "base64":
            return f"*[image from a {source.get('type', 'unknown')} source]*"
        data = base64.b64decode(source.get("data", ""))
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{IMAGE_EXTENSIONS.get(source.get('media_type', ''), 'bin')}"
        self.folder.mkdir(parents=True, exist_ok=True)
        file = self.folder / name
        if not file.exists():
            file.write_bytes(data)
        return f"![image]({quote(self.folder.name)}/{name})"
