"""The notebook's conversation with Claude: exchanges in the order they happened.

It is cell-aware: the first question asked by a new run of a cell drops the exchanges that
cell's earlier runs added, so re-running a cell replaces its exchange instead of piling up
duplicates. (Cells are known by the frontend's cell id; without one, exchanges just append.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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

    def messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": self.answer}]


class Conversation:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._last_run_of_cell: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.exchanges)

    def _replaced_by(self, cell: CellRun) -> str | None:
        """The cell id whose exchanges a question from ``cell`` replaces: its own, on a new run."""
        if cell.cell_id is not None and self._last_run_of_cell.get(cell.cell_id) != cell.run:
            return cell.cell_id
        return None

    def messages(self, cell: CellRun | None = None) -> list[dict[str, Any]]:
        """The history a question from ``cell`` is sent with, as alternating user and
        assistant messages (without the exchanges that question will replace)."""
        replaced = self._replaced_by(cell) if cell is not None else None
        return [m for e in self.exchanges if replaced is None or e.cell.cell_id != replaced for m in e.messages()]

    def record(self, exchange: Exchange) -> None:
        """Append an answered exchange; the first one of a new run of a cell replaces the
        exchanges of that cell's earlier runs. (An unanswered one changes nothing: the API
        rejects an assistant turn with no content, and the earlier exchange is worth more.)"""
        if not exchange.answer:
            return
        if (replaced := self._replaced_by(exchange.cell)) is not None:
            self._last_run_of_cell[replaced] = exchange.cell.run
            self.exchanges = [e for e in self.exchanges if e.cell.cell_id != replaced]
        self.exchanges.append(exchange)

    def image_digests(self) -> set[str]:
        """Digests of the images the conversation holds (see :func:`claude_magic.images.block_digest`)."""
        from .images import block_digest

        return {d for e in self.exchanges for block in e.question if (d := block_digest(block)) is not None}

    def clear(self) -> None:
        self.exchanges.clear()
        self._last_run_of_cell.clear()
