"""Showing a streaming answer: Markdown fix-ups, a throttled notebook display, a terminal writer.

The stream appends text as fast as it arrives; a renderer redraws at most ``refresh_rate``
times a second, and less often as the answer grows (each redraw costs its full length, in
the kernel and in the frontend), so the total rendering cost stays linear in the answer's
length. The final redraw always shows the complete answer.

Text from the model or the server is shown as text, never as markup: answers and thinking
go through :func:`safe_markdown.safe_markdown`, data (a model id, a stop reason, a table
cell) through :func:`literal_markdown` or :func:`code_span`, code through :func:`fenced`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .safe_markdown import Markup, safe_markdown
from .wording import waiting_line

REDRAW_CHARS_PER_SECOND = 100_000
"""Redraw budget: an answer of N characters is redrawn at most every N / this seconds."""
DEFAULT_REFRESH_RATE = 10.0
"""Most redraws a second while an answer streams."""
PLACEHOLDER = "*…*"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_CODE_OR_MATH = re.compile(
    r"(?P<fence>^ {0,3}(?P<marker>`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}(?P=marker)[`~]*[ \t]*$|\Z))"
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))"
    r"|(?P<display>\$\$.+?\$\$)"
    r"|(?P<inline>\$(?=[^\s$])[^$\n]*?(?<=[^\s\\$])\$(?!\d))"
    r"|(?P<escaped>\\\$)"
    r"|(?P<dollar>\$)",
    re.MULTILINE | re.DOTALL,
)


def close_open_fence(markdown: str) -> str:
    """Close a code fence left open by a partial answer, so the rest isn't shown as code."""
    open_marker: str | None = None
    for match in _FENCE.finditer(markdown):
        marker = match.group(1)
        if open_marker is None:
            open_marker = marker
        elif marker[0] == open_marker[0] and len(marker) >= len(open_marker):
            open_marker = None
    if open_marker is None:
        return markdown
    return f"{markdown}{'' if markdown.endswith(chr(10)) else chr(10)}{open_marker}"


def protect_dollars(markdown: str) -> str:
    r"""Escape the ``$`` signs that are not math, so "$5 and $10" is not typeset by the frontend.

    Math follows Pandoc's rule: ``$x$`` opens before a non-space, closes after a non-space,
    and is not followed by a digit; ``$$…$$`` is display math. Code is left untouched.

    A price is written ``\\$``: the Markdown renderer turns that into ``\$`` in the page, which
    MathJax (``processEscapes``) shows as a plain dollar. A single backslash would be eaten by
    the Markdown step, leaving a bare ``$`` for MathJax to pair with the next one.
    """
    return replace_math(markdown, lambda kind, text: "\\\\$" if kind in ("dollar", "escaped") else text)


def replace_math(markdown: str, replace: Callable[[str, str], str]) -> str:
    """``markdown`` with each math span and each ``$`` outside code replaced by
    ``replace(kind, text)``; ``kind`` is ``"display"`` (``$$…$$``), ``"inline"`` (``$…$``),
    ``"escaped"`` (``\\$``) or ``"dollar"`` (a ``$`` that is not math). Code is left untouched."""

    def one(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        return match.group(0) if kind in ("fence", "code") else replace(kind, match.group(0))

    return _CODE_OR_MATH.sub(one, markdown) if "$" in markdown else markdown


def display_markdown(text: str) -> str:
    """The Markdown to display for (possibly partial) answer text, safe to render."""
    return safe_markdown(_fixed(text))


def _fixed(text: str) -> str:
    return protect_dollars(close_open_fence(text))


def markdown_bundle(text: str, thinking: str = "") -> dict[str, str]:
    """A display bundle: rendered Markdown (any thinking collapsed above the answer), and
    the exact answer text as ``text/plain``."""
    if not thinking:
        return {"text/markdown": display_markdown(text), "text/plain": text}
    shown = safe_markdown(
        Markup("<details><summary>Thinking</summary>\n\n"), _fixed(thinking), Markup("\n\n</details>\n\n"), _fixed(text)
    )
    return {"text/markdown": shown, "text/plain": text}


_LITERAL = re.compile(r"[\\`*_|<>\[\]&]")


def literal_markdown(text: str) -> str:
    """``text`` shown as itself in Markdown, on one line: no emphasis, code, link, HTML, math
    or table break can start in it (a ``$`` is written as :func:`protect_dollars` does)."""
    one_line = re.sub(r"[\r\n\u2028\u2029]", " ", text)
    return _LITERAL.sub(r"\\\g<0>", one_line).replace("$", "\\\\$")


def code_span(text: str) -> str:
    """``text`` as an inline code span, on one line, whatever backticks it holds."""
    one_line = re.sub(r"[\r\n\u2028\u2029]+", " ", text)
    ticks = "`" * (max(map(len, re.findall("`+", one_line)), default=0) + 1)
    pad = " " if one_line[:1] in ("`", " ") or one_line[-1:] in ("`", " ") else ""
    return f"{ticks}{pad}{one_line}{pad}{ticks}"


def fenced(code: str, info: str = "") -> str:
    """``code`` as a fenced code block, with a fence longer than any backtick run inside it."""
    fence = "`" * max(3, max(map(len, re.findall("`+", code)), default=0) + 1)
    return f"{fence}{info}\n{code}\n{fence}"


class ThrottledDisplay:
    """Redraws a display at most ``refresh_rate`` times a second, and at least every
    ``len(text) / REDRAW_CHARS_PER_SECOND`` seconds apart, so redraw cost stays linear."""

    def __init__(
        self,
        draw: Callable[[str], None],
        *,
        refresh_rate: float = DEFAULT_REFRESH_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._draw = draw
        self._interval = 1.0 / refresh_rate if refresh_rate > 0 else 0.0
        self._clock = clock
        self._pieces: list[str] = []
        self._thinking: list[str] = []
        self._chars = 0
        self._last_draw: float | None = None
        self.draws = 0

    @property
    def thinking(self) -> str:
        return "".join(self._thinking)

    def feed_thinking(self, text: str) -> None:
        if text:
            self._thinking.append(text)
            self._grown(len(text))

    def feed(self, text: str) -> None:
        if text:
            self._pieces.append(text)
            self._grown(len(text))

    def _grown(self, chars: int) -> None:
        self._chars += chars
        now = self._clock()
        if self._last_draw is None or now - self._last_draw >= self._min_interval():
            self._redraw(now)

    def _min_interval(self) -> float:
        return max(self._interval, self._chars / REDRAW_CHARS_PER_SECOND)

    def _redraw(self, now: float) -> None:
        text = "".join(self._pieces)
        self._pieces = [text]
        self._last_draw = now
        self.draws += 1
        self._draw(text)

    def finish(self, text: str) -> None:
        self._pieces = [text]
        self._chars = len(text)
        self._redraw(self._clock())


class NotebookAnswer(ThrottledDisplay):
    """One display, created with a placeholder and updated in place as text arrives."""

    def __init__(self, *, refresh_rate: float = DEFAULT_REFRESH_RATE, clock: Callable[[], float] = time.monotonic) -> None:
        from IPython.display import DisplayHandle, display

        self._handle: DisplayHandle = display(
            {"text/markdown": PLACEHOLDER, "text/plain": "…"}, raw=True, display_id=True
        )
        super().__init__(self._update, refresh_rate=refresh_rate, clock=clock)

    def _update(self, text: str) -> None:
        self._handle.update(markdown_bundle(text, self.thinking), raw=True)

    def waiting(self, waited: float) -> None:
        line = waiting_line(waited)
        self._handle.update({"text/markdown": f"*{line}*", "text/plain": line}, raw=True)


class FinalAnswer:
    """No live updates: the complete answer is displayed once, when it ends."""

    def __init__(self) -> None:
        self._thinking: list[str] = []

    def feed(self, text: str) -> None:
        pass

    def feed_thinking(self, text: str) -> None:
        self._thinking.append(text)

    def finish(self, text: str) -> None:
        from IPython.display import display

        display(markdown_bundle(text, "".join(self._thinking)), raw=True)

    def waiting(self, waited: float) -> None:
        """Nothing shows before the answer is complete, waiting included (one output per answer)."""


class TerminalAnswer:
    """Terminal IPython: the text is written as it arrives."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._written = 0
        self._status = 0
        """Characters of the waiting line on screen, for the answer to write over."""

    def waiting(self, waited: float) -> None:
        line = waiting_line(waited)
        self._stream.write(f"\r{line}")
        self._stream.flush()
        self._status = len(line)

    def _clear_status(self) -> None:
        if self._status:
            self._stream.write(f"\r{' ' * self._status}\r")
            self._status = 0

    def feed(self, text: str) -> None:
        self._clear_status()
        self._stream.write(text)
        self._stream.flush()
        self._written += len(text)

    def feed_thinking(self, text: str) -> None:
        """The terminal shows the answer only; thinking stays in the conversation."""

    def finish(self, text: str) -> None:
        self._clear_status()
        if len(text) > self._written:  # text the stream never fed, e.g. from a non-streamed answer
            self._stream.write(text[self._written :])
        self._stream.write("\n")
        self._stream.flush()


def show_footer(line: str, *, in_notebook: bool) -> None:
    """A short line under the answer: model, tokens, timings (the model id and the stop reason
    come from the server: shown as text)."""
    if in_notebook:
        from IPython.display import display

        display({"text/markdown": f"<sub>{literal_markdown(line)}</sub>", "text/plain": line}, raw=True)
    else:
        print(line)


def show_text(mime_bundle: dict[str, Any]) -> None:
    from IPython.display import display

    display(mime_bundle, raw=True)
