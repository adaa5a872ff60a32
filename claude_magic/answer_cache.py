"""Answers to identical requests, kept on disk, so "Run All" on a finished notebook costs nothing.

A request is identified by the SHA-256 of its canonical JSON body (model, settings, system,
history and question) together with the API version and base URL: the same question asked
of a different server is a different request. Only the answer is stored, one JSON file per
request under ``$CLAUDE_MAGIC_HOME/answers``, never a credential. Past ``max_bytes`` the
least recently used answers are removed (a hit refreshes a file's time).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    def __init__(self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if directory is None:
            from .store import home

            directory = home() / "answers"
        self.directory = directory
        self.max_bytes = max_bytes

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> CachedAnswer | None:
        path = self._path(key)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            os.utime(path)  # most recently used now
        except (OSError, ValueError):
            return None
        return CachedAnswer(stored["message"], stored["saved_at"])

    def put(self, key: str, message: dict[str, Any]) -> None:
        """Store atomically (a reader never sees half a file), then keep within ``max_bytes``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"message": message, "saved_at": time.time()}, ensure_ascii=False)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.directory, suffix=".tmp", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, self._path(key))
        self._evict()

    def _evict(self) -> None:
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
            path.unlink(missing_ok=True)
            total -= size
