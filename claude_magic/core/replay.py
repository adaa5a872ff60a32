"""Answers saved in the notebook's own file, found by their request's SHA-256: replay.

Each answer a notebook saved carries its provenance in its output's metadata (see
:mod:`.provenance`), with the SHA-256 of the request that produced it and the answer's blocks
as the conversation recorded them. A question whose request hashes the same is the same
question, asked with the same history, attachments and settings, so its saved answer can be
shown and recorded instead of asking again: a notebook sent to a colleague replays without a
key, and since each replayed exchange is recorded as the original was, every later request is
byte for byte the original's too. The answer is rendered again from its blocks, as a fresh one
is (the saved Markdown beside it is never shown as it is: a notebook file is data).

The file is read once and read again only when its modification time or size changes. It is
not parsed whole: a 50 MB notebook is mostly figures. Its bytes are searched for the metadata
key (``"claude_magic":``, which can't appear unescaped inside a JSON string) and only the
object after each is decoded (``bench/replay.py`` measures both). Entries found stay when the
file changes: JupyterLab autosaves while Run All is clearing and refilling outputs, and an
answer this kernel has seen saved is still the answer to its request.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from pathlib import Path

from .provenance import PROVENANCE_KEY, Provenance

_KEY = f'"{PROVENANCE_KEY}"'.encode()
_OBJECT_FOLLOWS = re.compile(rb"\s*:\s*\{")
_FIRST_WINDOW = 16 * 1024
_DECODER = json.JSONDecoder()


class NotebookAnswers:
    """The answers saved in one notebook file, by request hash."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))
        self._index: dict[str, Provenance] = {}
        self._read_as: tuple[int, int] | None = None
        """The (mtime, size) of the file when it was last read."""
        self.problem: str | None = None
        """Why the file could not be read, when it could not."""

    def find(self, request_sha256: str) -> Provenance | None:
        """The complete answer saved for this request, reading the file again if it changed."""
        self._refresh()
        return self._index.get(request_sha256)

    def why_none(self) -> str:
        """Why :meth:`find` found nothing, in words."""
        if self.problem is not None and not self._index:
            return f"no saved answer could be replayed: {self.path} could not be read ({self.problem})"
        return f"no saved answer in {self.path} matches this request"

    def __len__(self) -> int:
        self._refresh()
        return len(self._index)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            if (stat.st_mtime_ns, stat.st_size) == self._read_as:
                return
            self._index.update(_saved_answers(self.path))
        except (OSError, ValueError) as error:
            self.problem = getattr(error, "strerror", None) or str(error)
            return
        self._read_as, self.problem = (stat.st_mtime_ns, stat.st_size), None


def _saved_answers(path: Path) -> dict[str, Provenance]:
    """Every complete answer with provenance in the notebook at ``path``, by request hash."""
    found: dict[str, Provenance] = {}
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return found
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = data.find(_KEY)
            while start != -1:
                follows = _OBJECT_FOLLOWS.match(data, start + len(_KEY))
                if follows is not None:
                    saved = Provenance.from_json(_object_at(data, follows.end() - 1))
                    if saved is not None and saved.complete and saved.content and saved.request_sha256:
                        found[saved.request_sha256] = saved
                start = data.find(_KEY, start + len(_KEY))
    return found


def _object_at(data: mmap.mmap, start: int) -> object:
    """The JSON object that starts at byte ``start``, decoded from a window that grows until
    it holds all of it; None when there is none (a damaged file)."""
    size = _FIRST_WINDOW
    while True:
        window = data[start : start + size]
        try:
            value, _ = _DECODER.raw_decode(_utf8_prefix(window))
            return value
        except ValueError:  # cut off by the window (or not JSON: then the whole rest fails too)
            if start + size >= len(data):
                return None
            size *= 4


def _utf8_prefix(window: bytes) -> str:
    """``window`` as text, without a character the window's end cut in two."""
    try:
        return window.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(window) - 3:
            raise
        return window[: error.start].decode("utf-8")
