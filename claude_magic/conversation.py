"""The notebook's conversation with Claude: exchanges in the order they happened.

It is cell-aware: the first question asked by a new run of a cell drops the exchanges that
cell's earlier runs added, so re-running a cell replaces its exchange instead of piling up
duplicates. (Cells are known by the frontend's cell id; without one, exchanges just append.)

It is durable when the kernel knows its notebook (:func:`notebook_path`): each recorded
exchange, with the cell whose exchanges it replaced, goes to the notebook's log in
:mod:`claude_magic.store`, and :meth:`Conversation.open` replays that log in a new kernel.
Without a notebook the conversation lives for the session only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import ConversationStore


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

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.question}, *self.steps, {"role": "assistant", "content": self.answer}]

    def to_event(self, replaces: str | None) -> dict[str, Any]:
        """The log line that records this exchange (and the cell whose exchanges it replaced)."""
        cell = {"id": self.cell.cell_id, "count": self.cell.execution_count, "run": self.cell.run}
        return {
            "event": "exchange",
            "cell": cell,
            "replaces": replaces,
            "model": self.model,
            "usage": self.usage,
            "complete": self.complete,
            "question": self.question,
            "steps": self.steps,
            "answer": self.answer,
        }

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Exchange:
        cell = event.get("cell") or {}
        return cls(
            question=list(event.get("question") or []),
            answer=list(event.get("answer") or []),
            cell=CellRun(cell.get("id"), cell.get("count"), cell.get("run") or 0),
            model=str(event.get("model") or ""),
            usage=dict(event.get("usage") or {}),
            complete=bool(event.get("complete", True)),
            steps=list(event.get("steps") or []),
        )


class Conversation:
    def __init__(self, store: ConversationStore | None = None) -> None:
        self.exchanges: list[Exchange] = []
        self._last_run_of_cell: dict[str, int] = {}
        self.store = store
        """Where the conversation is kept; None: for this session only."""

    @classmethod
    def open(cls, notebook: str | None, root: Path | None = None) -> Conversation:
        """The notebook's conversation as its log left it (a session-only one without a notebook).

        A store that can't be read is reported in one line, and the conversation then lives
        for the session only rather than failing every question."""
        if notebook is None:
            return cls()
        from .store import ConversationStore, StoreError, warn

        store = ConversationStore(notebook, root)
        conversation = cls(store)
        try:
            events = store.read()
        except StoreError as error:
            warn(f"{error}; this conversation will not be saved")
            return cls()
        for event in events:
            if event.get("event") == "exchange":
                conversation._apply(Exchange.from_event(event), event.get("replaces"))
        return conversation

    def __len__(self) -> int:
        return len(self.exchanges)

    def _replaced_by(self, cell: CellRun) -> str | None:
        """The cell id whose exchanges a question from ``cell`` replaces: its own, on a new run."""
        if cell.cell_id is not None and self._last_run_of_cell.get(cell.cell_id) != cell.run:
            return cell.cell_id
        return None

    def history(self, cell: CellRun | None = None) -> list[Exchange]:
        """The exchanges a question from ``cell`` is sent with (without those it will replace)."""
        replaced = self._replaced_by(cell) if cell is not None else None
        return [e for e in self.exchanges if replaced is None or e.cell.cell_id != replaced]

    def messages(self, cell: CellRun | None = None) -> list[dict[str, Any]]:
        """The history a question from ``cell`` is sent with, as alternating user and
        assistant messages (without the exchanges that question will replace)."""
        return [m for e in self.history(cell) for m in e.messages()]

    def record(self, exchange: Exchange) -> None:
        """Append an answered exchange; the first one of a new run of a cell replaces the
        exchanges of that cell's earlier runs. (An unanswered one changes nothing: the API
        rejects an assistant turn with no content, and the earlier exchange is worth more.)
        The change is logged too, when the conversation is kept."""
        if not exchange.answer:
            self.note_usage(exchange.model, exchange.usage)
            return
        replaced = self._replaced_by(exchange.cell)
        if replaced is not None:
            self._last_run_of_cell[replaced] = exchange.cell.run
        self._apply(exchange, replaced)
        self._log(exchange.to_event(replaced))

    def note_usage(self, model: str, usage: dict[str, Any]) -> None:
        """Log the tokens of a question that left no exchange (``--no-history``, no answer),
        so the notebook's usage counts everything it spent."""
        if usage:
            self._log({"event": "usage", "model": model, "usage": usage})

    def _apply(self, exchange: Exchange, replaces: str | None) -> None:
        if replaces is not None:
            self.exchanges = [e for e in self.exchanges if e.cell.cell_id != replaces]
        self.exchanges.append(exchange)

    def _log(self, event: dict[str, Any]) -> None:
        if self.store is None:
            return
        from .store import StoreError, warn

        try:
            self.store.append(event)
        except (StoreError, OSError) as error:
            warn(f"the conversation could not be saved: {error}")

    def clear(self) -> Path | None:
        """Start a new conversation; a kept one is archived, never deleted (returns where)."""
        self.exchanges.clear()
        self._last_run_of_cell.clear()
        if self.store is None:
            return None
        from .store import StoreError, warn

        try:
            return self.store.archive()
        except (StoreError, OSError) as error:
            warn(f"the old conversation could not be archived: {error}")
            return None
