r"""Showing a streaming answer: Markdown fix-ups, a throttled notebook display, a terminal writer.

The stream appends text as fast as it arrives; a renderer redraws at most ``refresh_rate``
times a second, and less often as the answer grows (each redraw costs its full length, in
the kernel and in the frontend), so the total rendering cost stays linear in the answer's
length. The final redraw always shows the complete answer.

Text from the model or the server is shown as text, never as markup: answers and thinking
go through :func:`safe_markdown.safe_markdown`, data (a model id, a stop reason, a table
cell) through :func:`literal_markdown` or :func:`code_span`, code through :func:`fenced`.

A dollar that is not math (a price) must read ``$`` wherever a notebook is read, while the
model's ``$…$`` stays math where the frontend typesets it. How each reader pairs dollars (in
the Markdown source as written):

- JupyterLab and Notebook 7 (``@jupyterlab/rendermime``, ``renderMarkdown``): ``removeMath``
  pairs any two ``$`` not parted by a blank line (``\$`` is not one, but marked then turns it
  into a bare ``$``); MathJax 3 then typesets the page, pairing any two ``$`` within one run of
  text, a run ending at an element's edge (``processEscapes``: a ``\$`` in the page shows ``$``).
- nbconvert's HTML: mistune's math plugin pairs ``$…$`` within a paragraph, then MathJax in
  the page as above. Its Markdown export writes ``text/markdown`` as it is.
- VS Code: markdown-it (raw HTML on; DOMPurify in untrusted workspaces keeps ``span`` and
  ``sub``) with ``@vscode/markdown-it-katex``: a ``$`` opens after a blank or a non-word
  character and closes before one; ``\$`` is a ``$``, ``\\$`` a backslash and a ``$``.
- GitHub's notebook view: MathJax over the page; GitHub's "Writing mathematical expressions"
  writes a ``$`` beside math as ``<span>$</span>``, as MathJax's documentation does.

No backslash serves them all: JupyterLab needs ``\\$`` (its Markdown step eats one), which VS
Code and every Markdown export show as ``\$``. An entity (``&#36;``) hides the dollar from
each Markdown parser, but it is a ``$`` in the page, which MathJax still pairs; a zero-width
joiner beside a ``$`` changes no pairing. A ``$`` alone in an element of its own pairs with
nothing anywhere. So a literal dollar is written :data:`LITERAL_DOLLAR`,
``<span>&#36;</span>`` (the entity keeps it from ``removeMath`` and mistune, the element from
MathJax) where another math sign shares its block, and as a plain ``$`` where it is the only
one (a footer's cost, a lone price in a paragraph): nothing can pair with it there, and a
Markdown export reads as written. Math is left as the model wrote it.

An answer's final display keeps its provenance in the output's ``metadata``
(:func:`provenance_metadata`): the complete answer's display in a notebook, and the last
update of a live one (JupyterLab and nbclient replace an output's metadata with an update's).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from .citations import Sources, marked_pieces, marker, plain_marker, plain_text
from .safe_markdown import LITERAL_DOLLAR, Markup, safe_markdown

if TYPE_CHECKING:
    from ..core.provenance import Provenance
from ..defaults import DEFAULT_REFRESH_RATE
from .wording import waiting_line

REDRAW_CHARS_PER_SECOND = 100_000
"""Redraw budget: an answer of N characters is redrawn at most every N / this seconds."""
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


def protect_dollars(markdown: str) -> list[str | Markup]:
    """``markdown`` in pieces for :func:`safe_markdown`, each ``$`` that is not math (and each
    ``\\$``) written as a price (see the module docstring): plain where it is the only math
    sign in its block, else :data:`LITERAL_DOLLAR`, so "$5 and $10" is not typeset.

    Math follows Pandoc's rule: ``$x$`` opens before a non-space, closes after a non-space,
    and is not followed by a digit; ``$$…$$`` is display math. Code is left untouched.
    """
    if "$" not in markdown:
        return [markdown]
    lone = _lone_dollars(markdown)
    pieces: list[str | Markup] = []
    done = 0
    for match in _CODE_OR_MATH.finditer(markdown):
        if match.lastgroup in ("dollar", "escaped") and match.end() - 1 not in lone:
            pieces += [markdown[done : match.start()], Markup(LITERAL_DOLLAR)]
            done = match.end()
        elif match.lastgroup == "escaped":  # a lone \$: the backslash is not needed
            pieces.append(markdown[done : match.start()] + "$")
            done = match.end()
    return [*pieces, markdown[done:]]


_BLANK_LINE = re.compile(r"\n[ \t]*\n")
"""A blank line as CommonMark has it. JupyterLab's ``removeMath`` also takes a line of other
blanks for one: parting blocks at fewer places leaves fewer dollars plain, never more."""
_MATH_SIGN = re.compile(r"\$|\\\\[(\[]|\\begin\{")
r"""What opens or closes math in JupyterLab's ``removeMath`` or MathJax: ``$``, ``\\(``, ``\\[``, ``\begin{``."""


def _lone_dollars(markdown: str) -> set[int]:
    """Where a ``$`` is the only math sign in its block (the text between blank lines)."""
    lone = set()
    bounds = [0, *(edge for blank in _BLANK_LINE.finditer(markdown) for edge in blank.span()), len(markdown)]
    for start, end in zip(bounds[::2], bounds[1::2], strict=True):
        signs = list(_MATH_SIGN.finditer(markdown, start, end))
        if len(signs) == 1 and signs[0][0] == "$":
            lone.add(signs[0].start())
    return lone


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
    return safe_markdown(*answer_pieces(text))


def answer_pieces(text: str) -> list[str | Markup]:
    """(Possibly partial) answer text as pieces for :func:`safe_markdown` among Markdown of the
    caller's own: an open code fence closed, prices written as prices. Put it between blank
    lines, so that none of its blocks or math runs into the caller's."""
    return protect_dollars(close_open_fence(text))


def markdown_bundle(text: str, thinking: str = "", sources: Sources | None = None) -> dict[str, str]:
    """A display bundle: rendered Markdown (any thinking collapsed above the answer, numbered
    markers at the cited passages and the sources under it), and the exact answer text as
    ``text/plain`` (with ``[1]`` markers and the sources listed, when it cites any)."""
    if not thinking and not sources:
        return {"text/markdown": display_markdown(text), "text/plain": text}
    above: list[str | Markup] = []
    if thinking:
        above = [Markup("<details><summary>Thinking</summary>\n\n"), *answer_pieces(thinking), Markup("\n\n</details>\n\n")]
    if not sources:
        return {"text/markdown": safe_markdown(*above, *answer_pieces(text)), "text/plain": text}
    shown = safe_markdown(*above, *_marked(text, sources), Markup(f"\n\n{sources.html()}\n"))
    return {"text/markdown": shown, "text/plain": plain_text(text, sources)}


_AT_MARKER = "\ue002"
"""Stands for a citation's marker while the answer's Markdown is fixed up (never in model text)."""


def _marked(text: str, sources: Sources) -> list[str | Markup]:
    """The answer's Markdown, fixed up as a whole, with each marker as markup of our own at its
    offset: model text pieces between them, made safe by :func:`safe_markdown` with the rest."""
    pieces = marked_pieces(text.replace(_AT_MARKER, "\ufffd"), sources)
    numbers = iter([p for p in pieces if not isinstance(p, str)])
    marked: list[str | Markup] = []
    for piece in answer_pieces(_AT_MARKER.join(p for p in pieces if isinstance(p, str))):
        first, *rest = [piece] if isinstance(piece, Markup) else piece.split(_AT_MARKER)
        marked.append(first)
        for part in rest:
            marked += [Markup(marker(next(numbers))), part]
    return marked


_LITERAL = re.compile(r"[\\`*_|<>\[\]&]")


def literal_markdown(text: str, *, alone: bool = False) -> str:
    """``text`` shown as itself in Markdown, on one line: no emphasis, code, link, HTML, math
    or table break can start in it. A ``$`` is written :data:`LITERAL_DOLLAR`; with ``alone``
    (the text is a block of its own, as a footer is), a single one stays plain."""
    one_line = re.sub(r"[\r\n\u2028\u2029]", " ", text)
    escaped = _LITERAL.sub(r"\\\g<0>", one_line)
    if alone and len(_MATH_SIGN.findall(escaped)) == 1:
        return escaped
    return escaped.replace("$", LITERAL_DOLLAR)


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


def provenance_metadata(provenance: Provenance) -> dict[str, Any]:
    """An answer's output ``metadata``: its provenance under the package's key (every display
    of a finished answer, a cell's or an exported one, saves it this way)."""
    from ..core.provenance import PROVENANCE_KEY

    return {PROVENANCE_KEY: provenance.to_json()}


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
        self.sources = Sources()
        """The answer's citations so far, numbered, with where their markers go."""
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

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        self.sources.add(citation, at)
        self._grown(0)

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
        self._metadata: dict[str, Any] = {}
        super().__init__(self._update, refresh_rate=refresh_rate, clock=clock)

    def _update(self, text: str) -> None:
        self._handle.update(markdown_bundle(text, self.thinking, self.sources), metadata=self._metadata, raw=True)

    def finish_with(self, text: str, provenance: Provenance) -> None:
        """The last update, keeping the answer's provenance (it replaces the output's metadata)."""
        self._metadata = provenance_metadata(provenance)
        self.finish(text)

    def waiting(self, waited: float) -> None:
        line = waiting_line(waited)
        self._handle.update({"text/markdown": f"*{line}*", "text/plain": line}, raw=True)


class FinalAnswer:
    """No live updates: the complete answer is displayed once, when it ends."""

    def __init__(self) -> None:
        self._thinking: list[str] = []
        self.sources = Sources()

    def feed(self, text: str) -> None:
        pass

    def feed_thinking(self, text: str) -> None:
        self._thinking.append(text)

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        self.sources.add(citation, at)

    def finish(self, text: str) -> None:
        self._show(text, {})

    def finish_with(self, text: str, provenance: Provenance) -> None:
        self._show(text, provenance_metadata(provenance))

    def _show(self, text: str, metadata: dict[str, Any]) -> None:
        from IPython.display import display

        display(markdown_bundle(text, "".join(self._thinking), self.sources), metadata=metadata, raw=True)

    def waiting(self, waited: float) -> None:
        """Nothing shows before the answer is complete, waiting included (one output per answer)."""


class TerminalAnswer:
    """Terminal IPython: the text is written as it arrives."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._written = 0
        self.sources = Sources()
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

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        """``[1]`` where the cited passage ends, as it streams; the sources under the answer."""
        number = self.sources.add(citation, at)
        if 0 < at <= self._written:
            self._stream.write(f" {plain_marker([number])}")

    def finish(self, text: str) -> None:
        self._clear_status()
        if not self._written:  # an answer that did not stream (from the answer cache): all of it at once
            self._stream.write(f"{plain_text(text, self.sources)}\n")
            self._stream.flush()
            return
        if len(text) > self._written:  # text the stream never fed
            self._stream.write(text[self._written :])
        self._stream.write("\n")
        if self.sources:
            self._stream.write(f"\n{self.sources.plain()}\n")
        self._stream.flush()


def show_footer(line: str, *, in_notebook: bool) -> None:
    """A short line under the answer: model, tokens, timings (the model id and the stop reason
    come from the server: shown as text)."""
    if in_notebook:
        from IPython.display import display

        display({"text/markdown": f"<sub>{literal_markdown(line, alone=True)}</sub>", "text/plain": line}, raw=True)
    else:
        print(line)


def show_text(mime_bundle: dict[str, Any]) -> None:
    from IPython.display import display

    display(mime_bundle, raw=True)
