"""The notebook's conversation on disk: an append-only JSON Lines log per notebook.

Under the home folder (``$CLAUDE_MAGIC_HOME``, by default ``claude_magic`` in the Jupyter
data directory)::

    conversations/<notebook>-<hash>.jsonl        one notebook's conversation, one event a line
    conversations/<notebook>-<hash>.jsonl.lock   the lock its writers take
    archive/<notebook>-<hash>.<time>.jsonl       conversations ended by %claude reset
    images/<sha256>.<ext>                        every image once, named by its content

Every change is one line, written with a single ``write`` under a file lock and synced, so
two kernels never interleave and a crash can at most tear the last line: reading skips it
with a warning, and the next append cuts it off first. Image blocks (``type: image`` with a
base64 source, wherever they are nested) are stored once as files and referred to by hash.
Credentials never reach the disk: every line is redacted before it is written.

The store knows nothing of exchanges; :mod:`claude_magic.conversation` decides what the
events mean.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import ClaudeError, redact

FORMAT = 1
LOCK_TIMEOUT = 10.0
"""Seconds to wait for another kernel's write before giving up (a write takes milliseconds)."""

IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_CREDENTIAL = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
"""Anything shaped like an Anthropic key, redacted even when nobody told us it is one."""
MISSING_IMAGE = "[an image that is no longer in claude-magic's store]"


class StoreError(ClaudeError):
    """The conversation could not be read or written."""


def warn(message: str) -> None:
    """One line on stderr: the store's problems never stop a question from being answered."""
    print(f"claude: {message}", file=sys.stderr)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given credentials, nor anything shaped like an Anthropic key."""
    return _CREDENTIAL.sub("sk-ant-***", redact(text, secrets))


def home() -> Path:
    """``$CLAUDE_MAGIC_HOME``, else ``claude_magic`` in the Jupyter data directory."""
    if configured := os.environ.get("CLAUDE_MAGIC_HOME"):
        return Path(configured).expanduser()
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:  # a dependency, but terminal IPython can do without it
        return Path.home() / ".local" / "share" / "jupyter" / "claude_magic"
    return Path(jupyter_data_dir()) / "claude_magic"


def log_name(notebook: str) -> str:
    """A file name for a notebook's log: readable (its stem) and unique (a hash of its path)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(notebook).stem).strip("._")[:60] or "notebook"
    return f"{stem}-{hashlib.sha256(notebook.encode()).hexdigest()[:12]}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ImageStore:
    """Images as files named by the SHA-256 of their bytes: each one is written once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, digest: str, media_type: str) -> Path:
        return self.folder / f"{digest}.{IMAGE_EXTENSIONS.get(media_type, 'bin')}"

    def put(self, media_type: str, data: str) -> str:
        """Store base64 ``data``; returns its digest. Atomic: a reader never sees half a file."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = data.encode()  # not base64 after all: keep it exactly as it was
        digest = hashlib.sha256(raw).hexdigest()
        target = self.path(digest, media_type)
        if not target.exists():
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(raw)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return digest

    def get(self, digest: str, media_type: str) -> str | None:
        """The base64 text of a stored image, or None when its file is gone."""
        try:
            return base64.b64encode(self.path(digest, media_type).read_bytes()).decode("ascii")
        except FileNotFoundError:
            return None


class ConversationStore:
    """One notebook's log (and its archives) under ``root``."""

    def __init__(self, notebook: str, root: Path | None = None) -> None:
        self.notebook = notebook
        self.root = root if root is not None else home()
        self.name = log_name(notebook)
        self.path = self.root / "conversations" / f"{self.name}.jsonl"
        self.images = ImageStore(self.root / "images")
        self.secrets: tuple[str, ...] = ()
        """Credentials in use, redacted from every line (set by whoever holds them)."""
        self._reported: set[str] = set()
        """Damaged lines already warned about (reading the log again says nothing new)."""

    def __repr__(self) -> str:
        return f"ConversationStore({self.path})"

    # --- writing --------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> None:
        """Add one event, as one line, atomically; a new log starts with a header line."""
        line = self._encode(event)
        with self._locked():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._cut_torn_tail()
            handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(handle).st_size == 0:
                    line = self._encode({"event": "start", "format": FORMAT, "notebook": self.notebook}) + line
                _write_all(handle, line)
                os.fsync(handle)
            finally:
                os.close(handle)

    def archive(self) -> Path | None:
        """Move the log to the archive (a new conversation starts); None when there was none."""
        with self._locked():
            if not self.path.exists():
                return None
            folder = self.root / "archive"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            target = folder / f"{self.name}.{stamp}.jsonl"
            serial = 1
            while target.exists():
                serial += 1
                target = folder / f"{self.name}.{stamp}-{serial}.jsonl"
            os.replace(self.path, target)
            return target

    def _encode(self, event: dict[str, Any]) -> bytes:
        stored = {"time": now(), **self._externalise(event)}
        line = json.dumps(stored, ensure_ascii=False, separators=(",", ":"))
        return (scrub(line, self.secrets) + "\n").encode("utf-8")

    def _externalise(self, value: Any) -> Any:
        """``value`` with each base64 image block replaced by a reference to its stored file."""
        if isinstance(value, list):
            return [self._externalise(item) for item in value]
        if not isinstance(value, dict):
            return value
        source = value.get("source")
        if value.get("type") == "image" and isinstance(source, dict) and source.get("type") == "base64":
            digest = self.images.put(source.get("media_type", ""), str(source.get("data", "")))
            return {**value, "source": {"type": "stored", "media_type": source.get("media_type"), "sha256": digest}}
        return {key: self._externalise(item) for key, item in value.items()}

    def _cut_torn_tail(self) -> None:
        """Drop an unfinished last line (a crash mid-write), so the next line starts clean."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb") as file:
            file.seek(size - 1)
            if file.read(1) == b"\n":
                return
            end = _last_newline_end(file, size)
        os.truncate(self.path, end)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT, mode=0o600):
                yield
        except Timeout:
            raise StoreError(f"{self.path} is locked by another process; the conversation was not saved") from None

    # --- reading --------------------------------------------------------------------------

    def read(self, *, with_images: bool = True) -> list[dict[str, Any]]:
        """The live log's events, oldest first (images loaded back unless told otherwise)."""
        return list(self._events(self.path, with_images=with_images))

    def archived(self) -> list[Path]:
        """This notebook's archived conversations, oldest first."""
        return sorted((self.root / "archive").glob(f"{self.name}.*.jsonl"))

    def every_event(self) -> Iterator[dict[str, Any]]:
        """Every event this notebook ever logged, archives first, without image data."""
        for path in [*self.archived(), self.path]:
            yield from self._events(path, with_images=False)

    def _events(self, path: Path, *, with_images: bool) -> Iterator[dict[str, Any]]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(f"can't read {path}: {exc.strerror or exc}") from None
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                self._report_damage(path, number, torn=number == len(lines))
                continue
            if isinstance(event, dict):
                yield self._internalise(event) if with_images else event

    def _report_damage(self, path: Path, number: int, *, torn: bool) -> None:
        """Warn once about an unreadable line; ``torn``: the last one, with no newline after
        it, so its write never finished."""
        if f"{path}:{number}" in self._reported:
            return
        self._reported.add(f"{path}:{number}")
        warn(f"{path}: {'the last entry is incomplete (cut off mid-write)' if torn else f'line {number} is damaged'}; skipped it")

    def _internalise(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._internalise(item) for item in value]
        if not isinstance(value, dict):
            return value
        source = value.get("source")
        if value.get("type") == "image" and isinstance(source, dict) and source.get("type") == "stored":
            data = self.images.get(str(source.get("sha256")), str(source.get("media_type")))
            if data is None:
                warn(f"image {source.get('sha256')} is missing from {self.images.folder}; left out of the conversation")
                return {"type": "text", "text": MISSING_IMAGE}
            return {**value, "source": {"type": "base64", "media_type": source.get("media_type"), "data": data}}
        return {key: self._internalise(item) for key, item in value.items()}


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view) :]


def _last_newline_end(file: Any, size: int, chunk: int = 65536) -> int:
    """The offset just after the last newline of ``file`` (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        file.seek(start)
        found = file.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0

