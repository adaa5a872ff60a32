"""``--compare``, ``--sweep`` and ``--samples``: one question, several answers, side by side.

Each variant (a model, a value of one setting, or a sample) is a separate request sent with
the same history, all at once on the async client. The cell stays a plain synchronous magic:
the requests run on an event loop in a worker thread and the cell's thread draws one Markdown
display (columns where there is room, stacked otherwise) at a throttled rate. Ctrl-C cancels
every request and keeps what arrived. Compared answers are not added to the conversation
until the user keeps one (``%claude keep N``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError
from ..core.background import Spawn, run_while_drawing
from ..core.engine import AnswerCutOff, ask_async

if TYPE_CHECKING:
    from ..api.settings import ClientSettings
    from ..core.conversation import CellRun
    from ..core.engine import Answer
    from ..core.session import AskOptions, ClaudeSession

INTERRUPTED = "interrupted; the partial answer is kept"
SWEEPABLE = ("model", "effort", "max_tokens", "thinking", "system", "temperature")
POLL_SECONDS = 0.1


class CompareError(ClaudeError):
    """A --compare / --sweep / --samples request that can't be made as written."""


@dataclass
class Column:
    """One variant's answer as it arrives (appended from the worker thread, read by the cell's)."""

    label: str
    options: AskOptions
    pieces: list[str] = field(default_factory=list)
    content: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    first_token: float | None = None
    total: float | None = None
    error: str | None = None
    waiting: str | None = None
    """The Jupyter server holds the request for the rate limit: the line that says so."""

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def answered(self, answer: Answer) -> None:
        """What the column's answer left: its blocks, usage and timing."""
        self.content, self.usage, self.model, self.first_token = answer.content, answer.usage, answer.model, answer.time_to_first_token

    def stats(self) -> str:
        from ..core.pricing import cost, format_cost

        if self.error:
            return self.error
        if self.total is None:
            return self.waiting if self.waiting and not self.pieces else "streaming…"
        spent = cost(self.model or self.options.model, self.usage)
        parts = [
            f"{self.usage.get('input_tokens', 0):,} in · {self.usage.get('output_tokens', 0):,} out",
            f"first token {self.first_token:.2f} s" if self.first_token is not None else "no text",
            f"total {self.total:.2f} s",
            f"≈ {format_cost(spent)}" if spent is not None else "cost unknown",
        ]
        return " · ".join(parts)


def variants(base: AskOptions, compare: str | None, sweep: str | None, samples: int | None, namespace: dict[str, Any]) -> list[Column]:
    """The columns to fill: one per model, per swept value, or per sample."""
    if compare:
        models = [m.strip() for m in compare.split(",") if m.strip()]
        return [Column(model, replace(base, model=model, use_history=base.use_history)) for model in models]
    if sweep:
        setting, equals, values = sweep.partition("=")
        setting = setting.strip().replace("-", "_")
        if not equals or setting not in SWEEPABLE:
            raise CompareError(f"--sweep takes SETTING=V1,V2,… with SETTING one of {', '.join(SWEEPABLE)}")
        values_and_labels = zip(_sweep_values(setting, values, namespace), _labels(setting, values, namespace), strict=True)
        return [Column(f"{setting}={label}", replace(base, **{setting: value})) for value, label in values_and_labels]
    count = samples or 1
    return [Column(f"sample {i}", base) for i in range(1, count + 1)]


def _labels(setting: str, values: str, namespace: dict[str, Any]) -> list[str]:
    if setting == "system" and values.strip().isidentifier():
        return [_short(prompt) for prompt in namespace[values.strip()]]
    return [_short(v.strip()) for v in values.split(",") if v.strip()]


def _sweep_values(setting: str, values: str, namespace: dict[str, Any]) -> list[Any]:
    if setting == "system" and values.strip().isidentifier():
        prompts = namespace.get(values.strip())
        if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
            raise CompareError(f"--sweep system={values.strip()}: give a list of strings held in that variable")
        return list(prompts)
    raw = [v.strip() for v in values.split(",") if v.strip()]
    if setting == "thinking":
        return [_thinking(value) for value in raw]
    try:
        return [int(v) for v in raw] if setting == "max_tokens" else [float(v) for v in raw] if setting == "temperature" else raw
    except ValueError:
        raise CompareError(f"--sweep {setting}: {values!r} are not all numbers") from None


def _thinking(value: str) -> dict[str, Any] | None:
    """``off``, ``adaptive`` or a budget of tokens, as the request's ``thinking``."""
    if value in ("off", "none"):
        return None
    if value == "adaptive":
        return {"type": "adaptive"}
    if value.isdigit():
        return {"type": "enabled", "budget_tokens": int(value)}
    raise CompareError(f"--sweep thinking: {value!r} is not off, adaptive or a number of tokens")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def run(session: ClaudeSession, question: list[dict[str, Any]], columns: list[Column], settings: ClientSettings, cell: CellRun | None, draw: Any) -> None:
    """Ask every column's variant at once and draw the columns until all have ended."""

    async def ask_every_column(spawn: Spawn) -> None:
        try:
            await asyncio.gather(*(spawn(_answer(session, question, column, settings, cell)) for column in columns), return_exceptions=True)
        finally:
            await session.release_async_client()

    run_while_drawing(ask_every_column, lambda: draw(columns), poll=POLL_SECONDS, grace=5, name="claude-compare")


async def _answer(session: ClaudeSession, question: list[dict[str, Any]], column: Column, settings: ClientSettings, cell: CellRun | None) -> None:
    """One column, through the session's turn engine; it joins the conversation only if kept."""
    try:
        answer = await ask_async(session, question, column.options, settings, lambda: _ColumnText(column), cell, record=False)
    except AnswerCutOff as cut:
        column.answered(cut.answer)
        column.error = INTERRUPTED if isinstance(cut.cause, asyncio.CancelledError) else f"{cut.cause}; the partial answer is kept"
    except asyncio.CancelledError:
        column.error = INTERRUPTED
    except ClaudeError as error:
        column.error = str(error)
    else:
        column.answered(answer)
        column.total = answer.total_time


class _ColumnText:
    """A column's :class:`~claude_magic.core.engine.Renderer`: text appended as it streams, for the
    cell's thread to draw."""

    def __init__(self, column: Column) -> None:
        self.column = column

    def feed(self, text: str) -> None:
        self.column.pieces.append(text)

    def feed_thinking(self, text: str) -> None:
        """Columns show answers; the thinking stays with the answer (``content``)."""

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        """Columns compare answers side by side; their citations stay with them (``content``)."""

    def finish(self, text: str) -> None:
        self.column.pieces = [text]

    def waiting(self, waited: float) -> None:
        from ..ui.wording import waiting_line

        self.column.waiting = waiting_line(waited)


GRID_STYLE = "display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px"
COLUMN_STYLE = "border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;padding:0 8px;overflow-x:auto"


def bundle(columns: list[Column]) -> dict[str, str]:
    """The display: Markdown, a grid of columns (stacked when narrow), and plain text.

    Markdown rather than HTML: nbconvert's Markdown export prefers ``text/html`` and would write
    it (a style sheet and all) into the ``.md``; as Markdown, each answer is exported as written
    and rendered as a cell's answer is (made safe, prices as prices, math typeset). The grid is
    two ``<div>`` levels with inline styles, no ``<style>`` element; where styles are stripped
    (GitHub) the columns stack. Each column's Markdown sits between blank lines, so no block and
    no math of one answer runs into the next."""
    from ..ui.render import answer_pieces, literal_markdown
    from ..ui.safe_markdown import Markup, safe_markdown

    pieces: list[str | Markup] = [Markup(f'<div class="cm-grid" style="{GRID_STYLE}">\n')]
    for i, column in enumerate(columns, 1):
        head = literal_markdown(f"{i}. {column.label}", alone=True)
        pieces += [Markup(f'<div class="cm-col" style="{COLUMN_STYLE}">\n\n**{head}**\n\n'), *answer_pieces(column.text)]
        pieces.append(Markup(f"\n\n<sub>{literal_markdown(column.stats(), alone=True)}</sub>\n\n</div>\n"))
    pieces.append(Markup("</div>"))
    plain = "\n\n".join(f"[{i}] {c.label}\n{c.text}\n({c.stats()})" for i, c in enumerate(columns, 1))
    return {"text/markdown": safe_markdown(*pieces), "text/plain": plain}
