"""A job's progress bar: rows done and failed, tokens, cost so far and time left.

In a notebook it is one display under the cell, an HTML ``<progress>`` bar with a line of text,
updated in place (``update_display_data``): no widget, so it needs no widget state to show in a
saved notebook, in VS Code or on GitHub, and costs the kernel no comm traffic. In a terminal it is
one line on stderr, rewritten with ``\\r``. It redraws at most :data:`REDRAWS_PER_SECOND` times a
second, however often the job reports, so drawing stays a small share of the job's time. With live
updates off (nbval, papermill), only the final state is shown.

Everything shown is numbers and words of ours: no text of the model's or a server's.
"""

from __future__ import annotations

import html
import sys
import time
from typing import TYPE_CHECKING, Any

from ..core.pricing import format_cost

if TYPE_CHECKING:
    from ..core.rows import Progress

REDRAWS_PER_SECOND = 4.0
BAR_WIDTH = 24


class ProgressBar:
    """Draws a :class:`~claude_magic.core.rows.Progress`; call it as often as you like, then :meth:`close`."""

    def __init__(self, in_notebook: bool, live: bool = True, rate: float = REDRAWS_PER_SECOND) -> None:
        self.in_notebook, self.live, self.interval = in_notebook, live, 1.0 / rate
        self._last = -1.0
        self._shown: str | None = None
        self._handle: Any = None

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self.live or now - self._last < self.interval:
            return
        self._last = now
        self._draw(progress)

    def close(self, progress: Progress) -> None:
        """The final state, drawn whatever the rate (and the terminal's line ended)."""
        progress.finished = True
        self._draw(progress)
        if not self.in_notebook:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _draw(self, progress: Progress) -> None:
        text = line(progress)
        if text == self._shown:
            return
        self._shown = text
        if not self.in_notebook:
            sys.stderr.write(f"\r{text_bar(progress)} {text}\x1b[K")
            sys.stderr.flush()
            return
        bundle = {"text/html": html_bar(progress, text), "text/plain": f"claude: {text}"}
        if self._handle is None:
            from IPython.display import display

            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def line(progress: Progress) -> str:
    """The progress in one line of words and numbers."""
    parts = [f"{progress.answered:,}/{progress.total:,} rows"]
    if progress.failed:
        parts.append(f"{progress.failed:,} failed")
    if progress.from_cache:
        parts.append(f"{progress.from_cache:,} from the answer cache")
    if progress.input_tokens or progress.output_tokens:
        parts.append(f"{progress.input_tokens:,} in · {progress.output_tokens:,} out tokens")
    parts.append(_cost(progress))
    if progress.status and not progress.finished:
        parts.append(progress.status)
    elapsed = time.monotonic() - progress.started
    if progress.finished:
        parts.append(f"in {elapsed:.1f} s")
    else:
        left = progress.seconds_left()
        if left is not None:
            parts.append(f"{_duration(left)} left")
        if waiting := progress.waiting():
            parts.append(f"{waiting} waiting for the rate limit")
    return " · ".join(parts)


def _cost(progress: Progress) -> str:
    spent = format_cost(progress.dollars) + (" + unknown" if progress.unpriced else "")
    projected = progress.projected_dollars()
    if progress.finished or projected is None or progress.answered >= progress.total:
        return spent
    return f"{spent} so far (≈ {format_cost(projected)} in all)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def text_bar(progress: Progress) -> str:
    filled = round(BAR_WIDTH * progress.answered / progress.total) if progress.total else BAR_WIDTH
    return "▕" + "█" * filled + " " * (BAR_WIDTH - filled) + "▏"


def html_bar(progress: Progress, text: str) -> str:
    total = max(progress.total, 1)
    return (
        '<div style="display:flex;align-items:center;gap:8px;font-size:90%">'
        f'<progress value="{progress.answered}" max="{total}" style="width:16em"></progress>'
        f"<span>{html.escape(text)}</span></div>"
    )
