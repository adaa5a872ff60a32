"""The notebook's conversation on disk: an append-only JSON Lines log per notebook.

Under the home folder (``$CLAUDE_MAGIC_HOME``, by default ``claude_magic`` in the Jupyter
data directory)::

    conversations/<notebook>-<hash>.jsonl        one notebook's conversation, one event a line
    conversations/<notebook>-<hash>.jsonl.lock   the lock its writers (and readers) take
    archive/<notebook>-<hash>.<time>.jsonl       conversations ended by %claude reset
    images/<sha256>.<ext>                        every image and PDF once, named by its content

Every change is one line, written with a single ``write`` under a file lock and synced, so
two kernels never interleave and a crash can at most tear the last line: reading skips it
with a warning, and the next append cuts it off first. Image and document blocks with a
base64 source (images, PDFs; wherever they are nested) are stored once as files and referred
to by hash, and read back as the same base64 text.
Credentials never reach the disk: every line goes through :func:`claude_magic.redaction.dumps`.

Several kernels may follow one log: :meth:`ConversationStore.follow` reads only what was
written since a :class:`Cursor` (the file it read and the offset after its last whole line),
so keeping up costs the new bytes, not the log's size. The log only grows, so an event's
offset names it for good; a reset moves the log to the archive, and a follower whose file is
gone starts again from the new log.

A notebook renamed or moved takes its conversation along (:func:`move_conversation`, which the
Jupyter server extension calls on the contents service's rename events): under both logs' locks
the log is renamed (the same file, so offsets and cursors stay good), a ``moved`` event is
appended, its archives follow, and a note is left where it was
(``conversations/<notebook>-<hash>.moved.json``: the new notebook and the file's identity). A
kernel still following the old log finds the note, under the lock, and follows the file to its
new place; only a reader of that very file follows a note, so a new notebook given the old name
starts a conversation of its own.

The store knows nothing of exchanges; :mod:`claude_magic.conversation` decides what the
events mean. Its problems are reported through ``notice`` (one line on stderr unless its
owner says otherwise): they never stop a question from being answered.
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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..api.errors import ClaudeError
from ..api.redaction import dumps

FORMAT = 2
"""2: an exchange has an ``id``, and ``replaces`` lists the ids it replaced (1: a cell id).
Each event is read by its shape, so a log started in format 1 goes on in format 2."""
LOCK_TIMEOUT = 10.0
"""Seconds to wait for another kernel's write before giving up (a write takes milliseconds)."""

MOVED_NOTE = ".moved.json"
"""Left where a log was by :func:`move_conversation`: where it went."""
MOST_MOVES = 50
"""Notes a reader follows in one go (a notebook renamed this often between two questions)."""

IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "application/pdf": "pdf"}
MISSING_IMAGE = "[an image that is no longer in claude-magic's store]"
MISSING_DOCUMENT = "[a PDF that is no longer in claude-magic's store]"
_FILED_BLOCKS = ("image", "document")
"""Blocks whose base64 data is kept as a file of its own (images, PDFs), the log referring to it."""

Notice = Callable[[str], None]
"""Where the store (and what uses it) reports a problem: one line, for the user."""


class StoreError(ClaudeError):
    """The conversation could not be read or written."""


def on_stderr(message: str) -> None:
    """The default notice: one line on stderr."""
    print(f"claude: {message}", file=sys.stderr)


def plainly(error: BaseException) -> str:
    """An error in a few words: an ``OSError`` as its reason and file, anything else as its message."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


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

    def put(self, media_type: str, data: str) -> str | None:
        """Store base64 ``data``; returns its digest, or None for data that would not read back
        as the same text (not base64 as the standard writes it: kept where it is). Atomic: a
        reader never sees half a file."""
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return None
        if base64.b64encode(raw).decode("ascii") != data:
            return None  # line breaks, or padding otherwise than the standard writes it
        digest = hashlib.sha256(raw).hexdigest()
        target = self.path(digest, media_type)
        if not target.exists():
            write_atomically(target, raw)
        return digest

    def get(self, digest: str, media_type: str) -> str | None:
        """The base64 text of a stored image, or None when its file is gone."""
        try:
            return base64.b64encode(self.path(digest, media_type).read_bytes()).decode("ascii")
        except FileNotFoundError:
            return None


Identity = tuple[int, int] | None
"""A log file as ``(st_dev, st_ino)``: a reset moves the log away, and the new one is another file."""
Located = tuple[int, dict[str, Any]]
"""An event and the offset of its line."""


@dataclass(frozen=True)
class Cursor:
    """How far a reader of the live log got: the file it read (None before there was one) and
    the offset just after the last whole line it read."""

    file: Identity = None
    offset: int = 0


@dataclass(frozen=True)
class Tail:
    """What the live log gained since a cursor."""

    events: list[Located]
    """Each new event with its offset in the log (which names it for good: the log only grows)."""
    cursor: Cursor
    """Where the reading stopped: after the last whole line."""
    restarted: bool = False
    """The file the cursor pointed into is gone (another kernel reset the conversation):
    ``events`` are the whole of the new log, if there is one."""


class ConversationStore:
    """One notebook's log (and its archives) under ``root``."""

    def __init__(self, notebook: str, root: Path | None = None, notice: Notice = on_stderr) -> None:
        self.root = root if root is not None else home()
        self._name_for(notebook)
        self.images = ImageStore(self.root / "images")
        self.notice = notice
        """Where problems are reported (damaged lines, missing images): set by the store's owner."""
        self._reported: set[tuple[str, Identity, int]] = set()
        """Damaged lines already reported (reading the log again says nothing new)."""
        self._holding = _Holding()

    def __repr__(self) -> str:
        return f"ConversationStore({self.path})"

    def _name_for(self, notebook: str) -> None:
        self.notebook = notebook
        self.name = log_name(notebook)
        self.path = self.root / "conversations" / f"{self.name}.jsonl"

    @property
    def moved_note(self) -> Path:
        """Where :func:`move_conversation` says where this notebook's log went."""
        return self.path.with_name(f"{self.name}{MOVED_NOTE}")

    # --- the lock -------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's lock: other kernels wait to read or write it. Reentrant, so a caller can
        catch up and append in one hold (and no other kernel's line comes in between)."""
        with self._holding.guard:
            if self._holding.depth == 0:
                self._acquire()
            self._holding.depth += 1
            try:
                yield
            finally:
                self._holding.depth -= 1
                if self._holding.depth == 0:
                    self._release()

    def _acquire(self) -> None:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._holding.file_lock is None:
            self._holding.file_lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT, mode=0o600)
        try:
            self._holding.file_lock.acquire()
        except Timeout:
            raise StoreError(f"{self.path} stayed locked by another process for {LOCK_TIMEOUT:g} s") from None

    def _release(self) -> None:
        if self._holding.file_lock is not None:
            self._holding.file_lock.release()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """The lock for a read, when it can be had. A log whose lock file can't be made (a
        read-only home) is one no kernel can append to through us, so it is read as it is."""
        with ExitStack() as stack:
            try:
                stack.enter_context(self.locked())
            except OSError:
                pass
            yield

    # --- writing --------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> Cursor:
        """Add one event, as one line, atomically; a new log starts with a header line. Returns
        the cursor just past the line: where a reader that caught up in the same hold of
        :meth:`locked` now stands."""
        line = self._encode(event)
        with self.locked():
            self._cut_torn_tail()
            handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                status = os.fstat(handle)
                if status.st_size == 0:
                    line = self._encode({"event": "start", "format": FORMAT, "notebook": self.notebook}) + line
                _write_all(handle, line)
                os.fsync(handle)
            finally:
                os.close(handle)
        return Cursor((status.st_dev, status.st_ino), status.st_size + len(line))

    def archive(self) -> Path | None:
        """Move the log to the archive (a new conversation starts); None when there was none."""
        with self.locked():
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
        return (dumps(stored) + "\n").encode("utf-8")

    def _externalise(self, value: Any) -> Any:
        """``value`` with each base64 image or PDF block replaced by a reference to its stored file."""
        if isinstance(value, list):
            return [self._externalise(item) for item in value]
        if not isinstance(value, dict):
            return value
        source = value.get("source")
        if value.get("type") in _FILED_BLOCKS and isinstance(source, dict) and source.get("type") == "base64":
            digest = self.images.put(source.get("media_type", ""), str(source.get("data", "")))
            if digest is not None:
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

    # --- reading --------------------------------------------------------------------------

    def follow(self, cursor: Cursor | None = None, *, with_images: bool = True) -> Tail:
        """The live log's events written since ``cursor`` (all of them without one), images
        loaded back unless told otherwise; only the new bytes are read. An unfinished last line
        (torn by a crash) is reported once and left for the next append to cut off."""
        cursor = cursor or Cursor()
        gone = Tail([], Cursor(), restarted=cursor.file is not None)
        try:
            if cursor.file is None and not self.path.exists():  # nothing to lock for: no folder or lock file is made to read nothing
                return gone
            with self._reading():
                if cursor.file is not None:
                    self._follow_move(cursor.file)
                with open(self.path, "rb") as file:
                    status = os.fstat(file.fileno())
                    identity = (status.st_dev, status.st_ino)
                    same = cursor.file == identity and cursor.offset <= status.st_size
                    start = cursor.offset if same else 0
                    file.seek(start)
                    data = file.read()
        except FileNotFoundError:
            return gone
        except OSError as exc:
            raise StoreError(f"the notebook's log {self.path} could not be read ({exc.strerror or exc})") from None
        events, end = self._whole_lines(data, start, identity, self.path)
        if with_images:
            events = [(offset, self._internalise(event)) for offset, event in events]
        return Tail(events, Cursor(identity, end), restarted=cursor.file is not None and not same)

    def _follow_move(self, file: Identity) -> None:
        """The log ``file`` this reader follows was moved with its notebook: read it where it went
        (see :func:`move_conversation`). Called holding the lock, so a move is never seen half done;
        the new log's lock is taken before the old one's is let go."""
        for _ in range(MOST_MOVES):
            if _identity(self.path) == file:
                return
            note = _read_note(self.moved_note)
            if note is None or note.get("file") != list(file or ()) or not isinstance(note.get("notebook"), str):
                return
            held, self._holding.file_lock = self._holding.file_lock, None
            self._name_for(note["notebook"])
            if self._holding.depth:
                self._acquire()
                if held is not None:
                    held.release()

    def archived(self) -> list[Path]:
        """This notebook's archived conversations, oldest first."""
        return sorted((self.root / "archive").glob(f"{self.name}.*.jsonl"))

    def every_event(self) -> Iterator[dict[str, Any]]:
        """Every event this notebook ever logged, archives first, without image data."""
        for path in self.archived():
            yield from self.archived_events(path)
        yield from (event for _, event in self.follow(with_images=False).events)

    def archived_events(self, path: Path) -> list[dict[str, Any]]:
        """The events of one archived conversation (see :meth:`archived`), without image data."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            reason = exc.strerror or exc
            raise StoreError(f"the archived conversation {path} could not be read ({reason})") from None
        return [event for _, event in self._whole_lines(data, 0, None, path)[0]]

    def _whole_lines(self, data: bytes, start: int, identity: Identity, path: Path) -> tuple[list[Located], int]:
        """The events of the whole lines of ``data`` (read from offset ``start``) and the offset
        after them; an unfinished last line is reported (once) and not read."""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self._report_damage(path, identity, start + end, torn=True)
        return list(self._parse(data[:end], start, identity, path)), start + end

    def _parse(self, data: bytes, start: int, identity: Identity, path: Path) -> Iterator[Located]:
        """The events of ``data`` (whole lines read from offset ``start``), each with its offset;
        a damaged line is reported and skipped alone."""
        offset = start
        for line in data.split(b"\n"):
            here, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                self._report_damage(path, identity, here, torn=False)
                continue
            if isinstance(event, dict):
                yield here, event

    def _report_damage(self, path: Path, identity: Identity, offset: int, *, torn: bool) -> None:
        """Report an unreadable line once; ``torn``: the last one, with no newline after it, so
        its write never finished."""
        if (str(path), identity, offset) in self._reported:
            return
        self._reported.add((str(path), identity, offset))
        if torn:
            what = "the last entry is incomplete (cut off mid-write)"
        else:
            what = f"line {_line_number(path, offset)} is damaged"
        self.notice(f"{path}: {what}; skipped it")

    def _internalise(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._internalise(item) for item in value]
        if not isinstance(value, dict):
            return value
        source = value.get("source")
        if value.get("type") in _FILED_BLOCKS and isinstance(source, dict) and source.get("type") == "stored":
            data = self.images.get(str(source.get("sha256")), str(source.get("media_type")))
            if data is None:
                missing = f"{value['type']} {source.get('sha256')} is missing from {self.images.folder}"
                self.notice(f"{missing}; left out of the conversation")
                return {"type": "text", "text": MISSING_IMAGE if value["type"] == "image" else MISSING_DOCUMENT}
            return {**value, "source": {"type": "base64", "media_type": source.get("media_type"), "data": data}}
        return {key: self._internalise(item) for key, item in value.items()}


@dataclass
class _Holding:
    """Who holds a store's lock in this process: threads take turns (``guard``), and the file
    lock is taken once however deeply :meth:`ConversationStore.locked` nests."""

    guard: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    file_lock: Any = None


def move_conversation(old: str, new: str, root: Path | None = None) -> Path | None:
    """Notebook ``old`` is now ``new`` (renamed or moved): its conversation goes with it, archives
    included, and kernels reading the old log follow it (see the module's docstring). A log already
    kept for ``new`` is archived first, never lost. Returns the log's new path, or None when
    ``old`` had no log."""
    source, target = ConversationStore(old, root), ConversationStore(new, root)
    if not source.path.exists() and not source.archived():  # nothing kept: no lock (file) either
        return None
    moved = None
    with source.locked(), target.locked():
        file = _identity(source.path)
        if file is not None:
            if target.path.exists():
                target.archive()
            os.replace(source.path, target.path)
            target.moved_note.unlink(missing_ok=True)
            write_atomically(source.moved_note, json.dumps({"notebook": new, "file": list(file)}).encode())
            target.append({"event": "moved", "from": old, "notebook": new})
            moved = target.path
    for archived in source.archived():
        os.replace(archived, archived.with_name(target.name + archived.name[len(source.name) :]))
    return moved


def kept_notebooks(root: Path | None = None) -> list[str]:
    """Every notebook whose conversation is kept under ``root`` (by the name its log last took)."""
    folder = (root if root is not None else home()) / "conversations"
    return [notebook for log in sorted(folder.glob("*.jsonl")) if (notebook := _notebook_of(log)) is not None]


def _notebook_of(log: Path) -> str | None:
    """The notebook a log is for: its header's, unless a ``moved`` event says otherwise since."""
    notebook = None
    try:
        with open(log, "rb") as file:
            for line in file:
                if notebook is not None and b'"event":"moved"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("event") in ("start", "moved") and isinstance(event.get("notebook"), str):
                    notebook = event["notebook"]
    except OSError:
        return None
    return notebook


def _identity(path: Path) -> Identity:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _read_note(path: Path) -> dict[str, Any] | None:
    try:
        note = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _line_number(path: Path, offset: int) -> int:
    """The number of the line starting at ``offset`` (only asked when a line is damaged)."""
    try:
        with open(path, "rb") as file:
            return file.read(offset).count(b"\n") + 1
    except OSError:
        return 0


def write_atomically(target: Path, data: bytes) -> None:
    """Write a whole private file: a reader sees the old one or the new one, never half of it
    (its folder is made, private too, if need be)."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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

