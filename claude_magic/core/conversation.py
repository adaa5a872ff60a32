"""The notebook's conversation with Claude: exchanges in the order they happened.

It is cell-aware, and a re-run forks it as editing a message does in a chat: the first
question asked by a new run of a cell becomes the latest, and the cell's earlier exchange and
every exchange that came after it are set aside (kept in the log, listed by
``%claude history --all``, restorable), never sent with it. So Run All sends what it sent
before, and after editing cell k, cells 1..k-1 are sent with the history they had. (Cells are
known by the frontend's cell id; without one, exchanges just append.)

It is durable when the kernel knows its notebook (:func:`notebook_path`): each recorded
exchange goes to the notebook's log in :mod:`claude_magic.store` with an id of its own and
the ids of the exchanges it replaced, and :meth:`Conversation.open` replays that log in a new
kernel. There is one conversation per notebook, however many kernels run it: before building
a request the session calls :meth:`Conversation.refresh`, which applies what other kernels
recorded since (reading only the log's new bytes), and :meth:`Conversation.record` catches up
and appends in one hold of the log's lock. So each kernel's view is always the log replayed,
and a restart restores exactly what the kernels had: an exchange is replaced only by name, by
a later run of its cell in a kernel that had it in view, never lost to one that did not.
(Logs of format 1 name a cell in ``replaces``; they are read as they always were.)

Without a notebook the conversation lives for the session only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import ConversationStore, Cursor, Notice

Replaces = list[str] | str | None
"""What a logged exchange replaced: exchange ids (format 2), a cell id (format 1), or nothing."""


def notebook_path(environ: Mapping[str, str], namespace: Mapping[str, Any]) -> str | None:
    """The notebook this kernel runs: Jupyter Server sets ``JPY_SESSION_NAME`` in the kernel's
    environment, VS Code ``__vsc_ipynb_file__`` in the user namespace; None in terminal
    IPython or a bare kernel."""
    path = environ.get("JPY_SESSION_NAME") or namespace.get("__vsc_ipynb_file__")
    return str(path) if path else None


@dataclass(frozen=True)
class CellRun:
    """One execution of one cell: the frontend's cell id, the kernel's execution count, and
    a serial that tells runs apart even when the count does not move (silent executions)."""

    cell_id: str | None = None
    execution_count: int | None = None
    run: int = 0


def _new_id() -> str:
    return os.urandom(8).hex()


@dataclass
class Exchange:
    """A question and its answer, as content blocks ready to send back."""

    question: list[dict[str, Any]]
    answer: list[dict[str, Any]]
    cell: CellRun = CellRun()
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    complete: bool = True
    """False when the answer was cut off (error, interrupt) and only its start is kept."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Tool rounds between question and answer: assistant ``tool_use`` and user ``tool_result`` messages."""
    id: str = field(default_factory=_new_id)
    """Names the exchange in the log, for a later run of its cell to replace it by."""
    billed_separately: bool = False
    """Its usage was logged when it was spent (a compared answer kept later), or was spent
    elsewhere (an answer replayed from the notebook): totals don't count it here."""
    provenance: dict[str, Any] | None = None
    """What produced the answer (:class:`~.provenance.Provenance`, without the blocks kept above)."""

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.question}, *self.steps, {"role": "assistant", "content": self.answer}]

    def to_event(self, replaces: list[str]) -> dict[str, Any]:
        """The log line that records this exchange (and the ids of the exchanges it replaced)."""
        cell = {"id": self.cell.cell_id, "count": self.cell.execution_count, "run": self.cell.run}
        return {
            "event": "exchange",
            "id": self.id,
            "cell": cell,
            "replaces": replaces,
            "model": self.model,
            "usage": self.usage,
            "complete": self.complete,
            "question": self.question,
            "steps": self.steps,
            "answer": self.answer,
            **({"billed_separately": True} if self.billed_separately else {}),
            **({"provenance": self.provenance} if self.provenance else {}),
        }

    @classmethod
    def from_event(cls, event: Mapping[str, Any], fallback_id: str | None = None) -> Exchange:
        """The exchange a log line (or an export's record) holds; ``fallback_id`` names one that has none
        (format 1), or a new id is made."""
        cell = event.get("cell") or {}
        return cls(
            question=list(event.get("question") or []),
            answer=list(event.get("answer") or []),
            cell=CellRun(cell.get("id"), cell.get("count"), cell.get("run") or 0),
            model=str(event.get("model") or ""),
            usage=dict(event.get("usage") or {}),
            complete=bool(event.get("complete", True)),
            steps=list(event.get("steps") or []),
            id=str(event.get("id") or fallback_id or _new_id()),
            billed_separately=bool(event.get("billed_separately")),
            provenance=event["provenance"] if isinstance(event.get("provenance"), dict) else None,
        )


@dataclass(frozen=True)
class SetAside:
    """An exchange a re-run took out of the conversation, and the exchange that did."""

    exchange: Exchange
    by: Exchange

    @property
    def replaced(self) -> bool:
        """Its own cell's re-run took it (not a re-run of an earlier cell)."""
        return self.exchange.cell.cell_id is not None and self.exchange.cell.cell_id == self.by.cell.cell_id


@dataclass(frozen=True)
class Cleared:
    """What :meth:`Conversation.clear` did with the conversation it ended; its ``str`` says so in
    one line, with what a restarted kernel will find."""

    turns: int
    log: Path | None = None
    """The notebook's log; None: the conversation lived for the session only."""
    archived: Path | None = None
    failure: str | None = None
    """Why the log could not be archived (it stays where it is)."""

    def __str__(self) -> str:
        previous = f"the previous one ({self.turns} turn{'s' if self.turns != 1 else ''})"
        if self.failure is not None:
            return (
                f"A new conversation starts in this kernel, but {previous} could not be archived ({self.failure}): "
                f"it stays in {self.log}, and a restarted kernel will continue it"
            )
        if self.archived is not None:
            return f"A new conversation starts; {previous} is archived in {self.archived}"
        if self.log is None:
            return f"A new conversation starts; {previous} lived for this session only."
        if self.turns:
            return f"A new conversation starts; {previous} had not been saved, so there was nothing to archive."
        return "A new conversation starts (there was nothing to archive)."


class Conversation:
    def __init__(self, store: ConversationStore | None = None, unsaved: str | None = None) -> None:
        self.exchanges: list[Exchange] = []
        self.set_aside: list[SetAside] = []
        """Exchanges a re-run took out of the conversation, oldest first (restorable)."""
        self._last_run_of_cell: dict[str, int] = {}
        self.store = store
        """Where the conversation is kept; None: for this session only."""
        self.unsaved = unsaved
        """Why a notebook's conversation lives for this session only (its log could not be read)."""
        self._cursor: Cursor | None = None
        """How far this kernel has read the log."""
        self._reported: set[str] = set()
        self._guard = threading.RLock()
        """Catching up and changing take turns (the chat panel may ask from another thread)."""

    @classmethod
    def open(cls, notebook: str | None, root: Path | None = None, notice: Notice | None = None) -> Conversation:
        """The notebook's conversation as its log left it (a session-only one without a notebook).

        A log that can't be read is reported in one line (through ``notice``, which the store
        keeps for its own reports) and left alone: the conversation then lives for the session
        only, and says why, rather than failing every question."""
        if notebook is None:
            return cls()
        from .store import ConversationStore, StoreError, on_stderr

        store = ConversationStore(notebook, root, notice or on_stderr)
        conversation = cls(store)
        try:
            conversation._catch_up()
        except StoreError as error:
            store.notice(f"{error}; this conversation will not be saved")
            return cls(unsaved=f"{error}, so nothing is saved")
        return conversation

    def __len__(self) -> int:
        return len(self.exchanges)

    def refresh(self) -> Conversation:
        """Catch up with the notebook's log: the exchanges other kernels recorded since this one
        last read it, with what they replaced (after a reset elsewhere, the new log). Reads
        only the new bytes. A log that can't be read is reported once; the view stays as it was."""
        if self.store is not None:
            from .store import StoreError

            try:
                with self._guard:
                    self._catch_up()
            except StoreError as error:
                self._report_once(f"{error}; questions asked in other kernels on this notebook are not picked up")
        return self

    def _replaced_by(self, cell: CellRun) -> list[str] | None:
        """The exchanges a question from ``cell`` sets aside: on a new run of the cell, its
        exchange in view and every one after it (None: not a new run, or no cell)."""
        if cell.cell_id is None or self._last_run_of_cell.get(cell.cell_id) == cell.run:
            return None
        first = next((i for i, e in enumerate(self.exchanges) if e.cell.cell_id == cell.cell_id), len(self.exchanges))
        return [e.id for e in self.exchanges[first:]]

    def history(self, cell: CellRun | None = None) -> list[Exchange]:
        """The exchanges a question from ``cell`` is sent with (without those it will replace)."""
        replaced = set(self._replaced_by(cell) or ()) if cell is not None else set()
        return [e for e in self.exchanges if e.id not in replaced]

    def messages(self, cell: CellRun | None = None) -> list[dict[str, Any]]:
        """The history a question from ``cell`` is sent with, as alternating user and
        assistant messages (without the exchanges that question will replace)."""
        return [m for e in self.history(cell) for m in e.messages()]

    def record(self, exchange: Exchange) -> None:
        """Append an answered exchange; the first one of a new run of a cell replaces the
        exchanges of that cell in view when the question was asked. (An unanswered one changes
        nothing: the API rejects an assistant turn with no content, and the earlier exchange is
        worth more.) The change is logged too, when the conversation is kept."""
        if not exchange.answer:
            self.note_usage(exchange.model, exchange.usage)
            return
        replaced = self._replaced_by(exchange.cell)  # before catching up: only what this kernel knew
        if replaced is not None and exchange.cell.cell_id is not None:
            self._last_run_of_cell[exchange.cell.cell_id] = exchange.cell.run
        self._commit(exchange.to_event(replaced or []), lambda: self._apply(exchange, replaced))

    def note_usage(self, model: str, usage: dict[str, Any]) -> None:
        """Log the tokens of a question that left no exchange (``--no-history``, no answer),
        so the notebook's usage counts everything it spent."""
        if usage:
            self._commit({"event": "usage", "model": model, "usage": usage})

    def _apply(self, exchange: Exchange, replaces: Replaces, restores: str | None = None) -> None:
        """``exchange`` joins the conversation, setting aside those it replaces (or, restored,
        leaving the set-aside list)."""
        if isinstance(replaces, str):  # format 1: every exchange of that cell
            gone = {e.id for e in self.exchanges if e.cell.cell_id == replaces}
        else:
            gone = set(replaces or ())
        self.set_aside = [s for s in self.set_aside if s.exchange.id != restores]
        self.set_aside += [SetAside(e, exchange) for e in self.exchanges if e.id in gone]
        self.exchanges = [e for e in self.exchanges if e.id not in gone]
        self.exchanges.append(exchange)

    def restore(self, number: int) -> Exchange:
        """Bring set-aside exchange ``number`` (1-based, as ``%claude history --all`` lists them)
        back into the conversation, as its latest exchange."""
        with self._guard:
            self.refresh()
            if not 1 <= number <= len(self.set_aside):
                raise IndexError(number)
            old = self.set_aside[number - 1].exchange
            back = replace(old, id=_new_id(), cell=CellRun(old.cell.cell_id, old.cell.execution_count, -1))
            self._commit({**back.to_event([]), "restores": old.id}, lambda: self._apply(back, [], restores=old.id))
            return back

    def _catch_up(self) -> None:
        """Apply what the log gained since this kernel last read it."""
        assert self.store is not None
        tail = self.store.follow(self._cursor)
        if tail.restarted:
            self.exchanges, self.set_aside = [], []
        for offset, event in tail.events:
            if event.get("event") == "exchange":
                self._apply(Exchange.from_event(event, f"@{offset}"), event.get("replaces"), event.get("restores"))
        self._cursor = tail.cursor

    def _commit(self, event: dict[str, Any], change: Callable[[], None] = lambda: None) -> None:
        """Catch up, make ``change`` and log ``event``, in one hold of the log's lock, so this
        kernel's view stays the log replayed. A failure to save loses nothing in this session."""
        if self.store is None:
            change()
            return
        from .store import StoreError, plainly

        changed = False
        with self._guard:
            try:
                with self.store.locked():
                    self._catch_up()
                    change()
                    changed = True
                    self._cursor = self.store.append(event)
            except (StoreError, OSError) as error:
                if not changed:
                    change()
                self.store.notice(f"the conversation could not be saved: {plainly(error)}")

    def _report_once(self, message: str) -> None:
        if message not in self._reported and self.store is not None:
            self._reported.add(message)
            self.store.notice(message)

    def clear(self) -> Cleared:
        """Start a new conversation; a kept one is archived, never deleted (what happened to it
        is returned, for the user to be told)."""
        with self._guard:
            turns = len(self.exchanges)
            self.exchanges = []
            self.set_aside = []
            self._last_run_of_cell.clear()
            if self.store is None:
                return Cleared(turns)
            from .store import StoreError, plainly

            try:
                archived = self.store.archive()
            except (StoreError, OSError) as error:
                return Cleared(turns, self.store.path, failure=plainly(error))
            self._cursor = None
            return Cleared(turns, self.store.path, archived)
