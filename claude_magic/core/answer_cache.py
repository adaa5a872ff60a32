"""Answers to identical requests, kept on disk, so "Run All" on a finished notebook costs nothing.

A request is identified by the SHA-256 of its canonical JSON body (model, settings, system,
history and question) together with the API version and base URL: the same question asked
of a different server is a different request. Only the answer is stored, one JSON file per
request under ``$CLAUDE_MAGIC_HOME/answers``, scrubbed of credentials as the conversation's log
is (:func:`claude_magic.redaction.dumps`). Past ``max_bytes`` the least recently used answers
are removed (a hit refreshes a file's time).

A job that keeps many answers at once (the rows of :mod:`.rows`) defers eviction to its end
(:meth:`AnswerCache.deferred_eviction`): each eviction looks at every file.

The cache never costs an answer: one that can't be kept (a read-only home, a full disk) is
reported in one line, and a hit whose time can't be refreshed is still a hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Notice

DEFAULT_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class CachedAnswer:
    message: dict[str, Any]
    """The complete assistant message, as the API returned it (content, usage, stop reason)."""
    saved_at: float


def request_key(body: dict[str, Any], api_version: str, base_url: str) -> str:
    canonical = {k: v for k, v in body.items() if k != "stream"}
    text = json.dumps([api_version, base_url.rstrip("/"), canonical], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class AnswerCache:
    def __init__(
        self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES, notice: Notice | None = None
    ) -> None:
        from .store import home, on_stderr

        self.directory = directory if directory is not None else home() / "answers"
        self.max_bytes = max_bytes
        self.notice = notice or on_stderr
        """Where an answer that could not be kept is reported: set by the cache's owner."""
        self._deferring = 0

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> CachedAnswer | None:
        """The answer kept for ``key``; None when there is none (or it is damaged)."""
        path = self._path(key)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            answer = CachedAnswer(stored["message"], stored["saved_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        with suppress(OSError):  # a read-only cache still answers; it just can't note the use
            os.utime(path)  # most recently used now
        return answer

    def put(self, key: str, message: dict[str, Any]) -> None:
        """Keep ``message`` for ``key``; one that can't be written is reported, never raised."""
        from .store import plainly

        try:
            self._write(key, message)
        except OSError as error:
            self.notice(f"this answer was not kept in the answer cache: {plainly(error)}")
            return
        if not self._deferring:
            self._evict()

    @contextmanager
    def deferred_eviction(self) -> Iterator[None]:
        """Keep answers without evicting until the block ends (then evict once)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring:
                self._evict()

    def _write(self, key: str, message: dict[str, Any]) -> None:
        from ..api.redaction import dumps
        from .store import write_atomically

        write_atomically(self._path(key), dumps({"message": message, "saved_at": time.time()}).encode("utf-8"))

    def _evict(self) -> None:
        """Keep within ``max_bytes``: the least recently used answers go first."""
        entries = []
        for path in self.directory.glob("*.json"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            with suppress(OSError):
                path.unlink(missing_ok=True)
            total -= size
