"""Model text as Markdown that is shown as text: no raw HTML, no script, no live unsafe link.

JupyterLab (Notebook 7 too) renders the ``text/markdown`` output of a trusted notebook (every
output of the live session, every notebook it saved) with raw HTML on and no sanitiser, in
three steps: ``removeMath`` takes math out (``$…$``, ``$$…$$``, ``\\\\(…\\\\)``, ``\\\\[…\\\\]``,
``\\begin{…}…\\end{…}``), escaping ``&<>`` in it but not quotes; marked renders the rest, raw
HTML and any link URL included; ``replaceMath`` puts each math span back where its
placeholder landed, attribute values included. So, in the model's text:

- every ``<`` outside code becomes ``&lt;`` (``\\lt`` inside math), except the ``<`` of an
  autolink to an http(s) or mailto address: no tag, comment or HTML block can start;
- a link or image whose URL has another scheme (``javascript:``, ``data:``, … however it is
  spelled with entities, escapes and blanks) loses its link syntax and shows as written;
- a math span, as JupyterLab finds it, that holds a ``"`` and is not inside code loses its
  opening delimiter: put back into an attribute, its quote would end the attribute;
- a ``"`` in a code fence's info string becomes ``&quot;``: JupyterLab's highlighter puts the
  info string into a ``class`` attribute as it is.

Code is left as written: it shows ``<`` as ``<`` already. What is code is decided by
markdown-it-py (CommonMark and GFM tables, as marked reads them) on two texts: the Markdown
as written (what other frontends parse) and the Markdown as JupyterLab's marked sees it, the
math taken out (:func:`jupyterlab_math` follows JupyterLab's ``removeMath``). A ``<`` stays
raw only where both say code. To find where each ``<`` lands, each is replaced by a
character of its own from Unicode's private-use planes before parsing, which changes nothing
of the Markdown's structure (with ``<`` gone, no HTML is left to parse).

The caller's own HTML (the thinking's ``<details>``) is passed as :class:`Markup` and kept.
"""

from __future__ import annotations

import bisect
import html
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from markdown_it import MarkdownIt
    from markdown_it.token import Token

LITERAL_DOLLAR = "<span>&#36;</span>"
"""A ``$`` that no frontend reads as math (why: :mod:`claude_magic.ui.render`)."""
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
"""URL schemes a link may keep; a URL without a scheme (relative, ``#anchor``) is kept too."""


@dataclass(frozen=True)
class Markup:
    """HTML of the caller's own, kept as written among the model's text."""

    html: str


def safe_markdown(*pieces: str | Markup) -> str:
    """The pieces joined: model text (``str``) made safe as described above, :class:`Markup` kept."""
    text = "".join(_OWN_LT.join(p.html.split("<")) if isinstance(p, Markup) else _normalised(p) for p in pieces)
    return "".join(map(_safe_part, independent_parts(text))).replace(_OWN_LT, "<")


@lru_cache(maxsize=256)
def _safe_part(text: str) -> str:
    if "](" in text or "]:" in text:
        text = _apply(text, _defanged_links(text))
    if "<" in text or '"' in text:
        spans = jupyterlab_math(text)
        if '"' in text:
            text, spans = _without_quoted_math(text, spans)
        text = _apply(text, [*_escaped_angles(text, spans), *_escaped_info_quotes(text)])
    return text


_OWN_LT = "\x00"
"""Stands for the ``<`` of the caller's markup while the text is worked on (model text has no
NUL: CommonMark turns it into U+FFFD, and so does :func:`_normalised`)."""


def _normalised(text: str) -> str:
    r"""One line ending, ``\n``, as every parser here agrees on (JavaScript's regular expressions
    also end lines at ``\r``, U+2028 and U+2029, Python's and CommonMark's do not)."""
    if "\r" in text or "\u2028" in text or "\u2029" in text:
        text = re.sub(r"\r\n?|[\u2028\u2029]", "\n", text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


Edit = tuple[int, int, str]
"""Replace ``text[start:end]`` with the string."""


def _apply(text: str, edits: Iterable[Edit]) -> str:
    pieces, done = [], 0
    for start, end, replacement in sorted(edits):
        pieces += [text[done:start], replacement]
        done = end
    return "".join([*pieces, text[done:]])


# --- parts that can be made safe on their own -----------------------------------------------------

PART_CHARS = 4_000
"""The least length of a part of the text made safe on its own (and remembered)."""
_PART_START = re.compile(r"\n\n(?=[A-Za-z])")
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)


def independent_parts(text: str) -> list[str]:
    """``text`` cut into parts of at least :data:`PART_CHARS` that no Markdown construct runs
    across, so each can be made safe on its own: before a line that starts with a letter after
    a blank line (no list, quote, code block, table or paragraph goes on there), outside fenced
    code and outside what JupyterLab's ``removeMath`` hides as code. As an answer streams, its
    earlier parts stay the same, and are made safe once (:func:`_safe_part` remembers them)."""
    if len(text) < 2 * PART_CHARS:
        return [text]
    code = _merged([*_fenced_code(text), *((m.start(), m.end()) for m in _FENCE_HIDING.finditer(text))])
    cuts = [0]
    for match in _PART_START.finditer(text):
        start = match.end()
        if start - cuts[-1] >= PART_CHARS and not _inside(code, start):
            cuts.append(start)
    return [text[start:end] for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True)]


def _fenced_code(text: str) -> list[tuple[int, int]]:
    """The fenced code blocks (opened at most 3 spaces in), an unclosed one running to the end."""
    blocks: list[tuple[int, int]] = []
    opener: re.Match[str] | None = None
    for line in _FENCE_LINE.finditer(text):
        fence, rest = line[1], line[2]
        if opener is None:
            if fence[0] != "`" or "`" not in rest:
                opener = line
        elif fence[0] == opener[1][0] and len(fence) >= len(opener[1]) and not rest.strip(" \t"):
            blocks.append((opener.start(), line.end()))
            opener = None
    return [*blocks, (opener.start(), len(text))] if opener is not None else blocks


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping ``ranges`` merged: ordered and disjoint."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# --- links --------------------------------------------------------------------------------------

_LINK_TARGET = re.compile(r"\](?P<opener>[(:])\s*(?P<target>\S*)")
"""Where a link's URL starts: an inline link ``[text](url)``, or a definition ``[label]: url``."""
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")


def _defanged_links(text: str) -> list[Edit]:
    """A backslash before the ``(`` or ``:`` of each link to an unsafe URL: the link shows as written.

    Every ``](`` and ``]:`` counts, in code too (a JavaScript URL after one in code is rare, and
    a backslash there is cosmetic): which of them marked reads as links is not asked."""
    unsafe = [m.start("opener") for m in _LINK_TARGET.finditer(text) if not url_is_safe(m["target"])]
    return [(position, position, "\\") for position in unsafe]


def url_is_safe(url: str) -> bool:
    """Whether a link to ``url`` as written in Markdown is harmless: its scheme, read the way a
    browser will (backslash escapes and entities decoded, tabs and line breaks dropped), is
    http, https or mailto, or it has none."""
    decoded = html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", url.removeprefix("<")))
    scheme = _SCHEME.match(re.sub(r"[\t\n\r]", "", decoded).lstrip("".join(map(chr, range(0x21)))))
    return scheme is None or scheme[1].lower() in SAFE_SCHEMES


# --- math as JupyterLab takes it out ---------------------------------------------------------------

_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_MATH_SPLIT = re.compile(
    rf"(\$\$?|\\(?:begin|end)\{{[a-z]*\*?\}}|\\[{{}}$]|[{{}}]|(?:\n[{_JS_SPACE}]*)+|@@\d+@@|\\\\[()[\]])",
    re.IGNORECASE | re.ASCII,
)
_FENCE_HIDING = re.compile(r"^(?P<fence>`{3,}|~{3,})[^`\n]*\n[\s\S]*?^(?P=fence)`*$", re.MULTILINE)
_CODE_SPAN_HIDING = re.compile(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", re.MULTILINE)
_BLANK_LINE = re.compile(r"\n.*\n")


def jupyterlab_math(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` that JupyterLab's ``removeMath`` (``@jupyterlab/rendermime``,
    ``latex.ts``) takes out as math before marked sees the rest, in order.

    A line-for-line port: the dollars of column-0 fenced blocks and one-line code spans are
    hidden first, then the text is split at delimiters and the delimiters are paired (braces
    balanced, never across a blank line). ``text`` has only ``\\n`` line endings."""
    hidden = _dollars_hidden(text) if "`" in text or "~~~" in text else text
    blocks = _MATH_SPLIT.split(hidden)
    offsets = [0]
    for block in blocks:
        offsets.append(offsets[-1] + len(block))
    spans: list[tuple[int, int]] = []
    start: int | None = None
    end: str | None = None
    last: int | None = None
    braces = 0
    i = 1
    while i < len(blocks):
        block = blocks[i]
        if block.startswith("@"):
            pass  # an @@N@@ of the text's own: JupyterLab stores and restores it as it is
        elif start is not None:
            if block == end:
                if braces:
                    last = i
                else:
                    spans.append((offsets[start], offsets[i + 1]))
                    start = end = last = None
            elif _BLANK_LINE.search(block):
                if last is not None:
                    i = last
                    spans.append((offsets[start], offsets[i + 1]))
                start = end = last = None
                braces = 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = i, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, end, braces = i, "\\\\)" if block.endswith("(") else "\\\\]", 0
        elif block[1:6] == "begin":
            start, end, braces = i, "\\end" + block[6:], 0
        i += 2
    if start is not None and last is not None:
        spans.append((offsets[start], offsets[last + 1]))
    return spans


def _dollars_hidden(text: str) -> str:
    """``text`` with the ``$`` that JupyterLab hides from math (in column-0 fenced blocks and
    one-line code spans) replaced, the length kept."""
    for pattern in (_FENCE_HIDING, _CODE_SPAN_HIDING):
        text = pattern.sub(lambda match: match[0].replace("$", "\x01"), text)
    return text


_OPENERS = re.compile(r"\$\$?|\\\\[(\[]|\\begin")


def _without_quoted_math(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with no math span (as JupyterLab finds it) that holds a ``"`` outside code.

    JupyterLab puts each math span back wherever its placeholder landed, a link's URL or title
    or an image's alt text included, with its quotes as they are: one would end the attribute
    and start another (``onerror=…``). Such a span loses its opening delimiter and stays text.
    A few rounds catch what the first uncovers (a closing ``$`` may open the next span); a text
    built to go on longer loses every math delimiter. Returns the text and its math spans."""
    for _ in range(3):
        quoted = [span for span in spans if '"' in text[span[0] : span[1]]]
        if quoted:
            quoted = [span for span, in_code in zip(quoted, _spans_in_code(text, spans, quoted), strict=True) if not in_code]
        if not quoted:
            return text, spans
        text = _apply(text, _no_opener(text, quoted))
        spans = jupyterlab_math(text)
    while spans:
        text = _apply(text, _no_opener(text, spans))
        spans = jupyterlab_math(text)
    return text, spans


def _no_opener(text: str, spans: Sequence[tuple[int, int]]) -> list[Edit]:
    """Each span's opening delimiter, written so that it shows the same but opens no math:
    ``$`` as :data:`LITERAL_DOLLAR` (as :func:`render.protect_dollars` writes a price), a
    backslash as ``&#92;``."""
    edits = []
    for start, _ in spans:
        opener = _OPENERS.match(text, start)
        assert opener is not None, "a math span starts with its delimiter"
        if opener[0].startswith("$"):
            edits.append((start, opener.end(), _OWN_LT.join(LITERAL_DOLLAR.split("<")) * len(opener[0])))
        else:
            edits.append((start, start + (2 if opener[0].startswith("\\\\") else 1), "&#92;"))
    return edits


# --- what is code -------------------------------------------------------------------------------

_MARKERS = 2 * 0xFFFE
"""Private-use code points available as markers: planes 15 and 16. A text with more ``<``
than that, or with such characters of its own, has nothing taken for code."""
_MARKER = re.compile("[\U000F0000-\U0010FFFF]")


def _marker(number: int) -> str:
    return chr(0xF0000 + number) if number < 0xFFFE else chr(0x100000 + number - 0xFFFE)


def _has_markers(text: str) -> bool:
    return _MARKER.search(text) is not None


def _spans_in_code(text: str, spans: Sequence[tuple[int, int]], asked: Sequence[tuple[int, int]]) -> list[bool]:
    """For each of the ``asked`` math spans, whether marked (all the ``spans`` taken out) reads
    its placeholder as code."""
    if len(spans) > _MARKERS or _has_markers(text):
        return [False] * len(asked)
    code = _code_markers(_math_view(text, spans, []))
    number = {span: n for n, span in enumerate(spans)}
    return [_marker(number[span]) in code for span in asked]


def _math_view(text: str, spans: Sequence[tuple[int, int]], angles: Sequence[int]) -> str:
    """``text`` as marked sees it in JupyterLab: each math span replaced by ``@@<marker>@@``
    (spans numbered first), each ``<`` of ``angles`` outside them by its marker (numbered after)."""
    cuts = [(start, end, f"@@{_marker(n)}@@") for n, (start, end) in enumerate(spans)]
    cuts += [(p, p + 1, _marker(len(spans) + k)) for k, p in enumerate(angles) if not _inside(spans, p)]
    return _apply(text, cuts)


def _inside(spans: Sequence[tuple[int, int]], position: int) -> bool:
    """Whether ``position`` is inside one of the ordered, disjoint ``spans``."""
    index = bisect.bisect_right(spans, position, key=lambda span: span[0]) - 1
    return index >= 0 and position < spans[index][1]


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """CommonMark and GFM tables, the inline rules that decide code spans (escapes, links and
    their URLs and titles), and no inline parsing of its own: :func:`_code_markers` parses only
    the paragraphs that hold a marker."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable(["table"])
    return parser.disable(["inline", "text_join", "emphasis", "balance_pairs", "autolink", "html_inline"])


_OPEN_URL = re.compile(r"(?:(?:https?|ftp)://|www\.)\S*$", re.IGNORECASE)
"""A bare URL running to the end of a piece of text: marked (GFM) reads it as a link up to the
next blank or ``<``, and so swallows a code span's backtick right after it."""


def _code_markers(view: str) -> set[str]:
    """The markers markdown-it reads as code in ``view``: in code blocks, and in code spans but
    those marked may not read as code (after a bare URL that runs into them, which shifts every
    later pairing of backticks in the paragraph)."""
    parser, env = _parser(), {}  # type: ignore[var-annotated]  # markdown-it's env: link definitions
    code = []
    for token in parser.parse(view, env):
        if token.type in ("fence", "code_block"):
            code.append(token.content)
        elif token.type == "inline" and _MARKER.search(token.content):
            children: list[Token] = []
            parser.inline.parse(token.content, parser, env, children)
            code += _code_spans(children)
    return set(_MARKER.findall("".join(code)))


def _code_spans(children: Sequence[Token]) -> list[str]:
    spans: list[str] = []
    open_url = False
    for child in children:
        if child.type == "code_inline":
            if open_url:
                break
            spans.append(child.content)
        elif child.type == "text":
            runs_on = open_url and not any(c.isspace() for c in child.content)
            open_url = runs_on or _OPEN_URL.search(child.content) is not None
        elif child.type in ("softbreak", "hardbreak"):
            open_url = False
    return spans


# --- the escapes --------------------------------------------------------------------------------

_SAFE_AUTOLINK = re.compile(
    r"<(?:(?:https?|mailto):[^\s<>\"'`\\$\x00-\x1f]*|[A-Za-z0-9.+_-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>", re.ASCII
)
"""An autolink to a web or mail address, with nothing in it that could pair with code or math."""
_INFO_STRING = re.compile(r"^[ \t>*+\-0-9.)]*?(?:`{3,}|~{3,})(?P<info>[^\n]*)$", re.MULTILINE)


def _escaped_angles(text: str, spans: Sequence[tuple[int, int]]) -> list[Edit]:
    """Every ``<`` outside code as ``&lt;``, or ``\\lt`` in math (the ``spans``), safe autolinks kept."""
    angles = [m.start() for m in re.finditer("<", text)]
    if not angles:
        return []
    written, as_seen = _angles_in_code(text, spans, angles)
    edits = []
    for k, position in enumerate(angles):
        if _inside(spans, position):
            if k not in written:
                edits.append((position, position + 1, "\\lt "))
        elif not (k in written and k in as_seen) and not _SAFE_AUTOLINK.match(text, position):
            edits.append((position, position + 1, "&lt;"))
    return edits


def _angles_in_code(text: str, spans: Sequence[tuple[int, int]], angles: Sequence[int]) -> tuple[set[int], set[int]]:
    """Which ``<`` (numbered in order) markdown-it reads as code: in the Markdown as written, and
    as marked sees it in JupyterLab, the math ``spans`` taken out."""
    if len(angles) + len(spans) > _MARKERS or _has_markers(text):
        return set(), set()
    numbers = range(len(angles))
    code = _code_markers(_math_view(text, [], angles))
    written = {k for k in numbers if _marker(k) in code}
    if not spans or not written:
        return written, written
    as_seen = _code_markers(_math_view(text, spans, angles))
    return written, {k for k in numbers if _marker(len(spans) + k) in as_seen}


def _escaped_info_quotes(text: str) -> list[Edit]:
    """``&quot;`` for each ``"`` on a line that may open a code fence, after the fence."""
    return [
        (match.start("info") + offset, match.start("info") + offset + 1, "&quot;")
        for match in _INFO_STRING.finditer(text)
        for offset, char in enumerate(match["info"])
        if char == '"'
    ]
