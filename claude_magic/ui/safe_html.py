"""Answer Markdown as HTML that is safe to put in the page: what the chat panel shows.

markdown-it-py does the parsing, with raw HTML off, so ``<script>`` or ``<img onerror=…>``
in an answer shows as text. Links are checked by markdown-it (no ``javascript:``) and open
in a new tab with ``rel="noopener noreferrer"``; images become links, so an answer can't
make the browser fetch a URL by itself showing. Fenced code is highlighted by Pygments in
JupyterLab's editor colours (:func:`highlight_css`).

Math is left to the frontend (ipywidgets' ``HTMLMath`` hands it to MathJax), the way
JupyterLab's Markdown cells do it: math spans are set aside before parsing and put back
verbatim (HTML-escaped), and a ``$`` that is not math is written ``\\$``, which MathJax
shows as a dollar sign. The math rule is the notebook display's (:func:`render.replace_math`).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .citations import Sources, marked_pieces, marker
from .render import close_open_fence, replace_math

if TYPE_CHECKING:
    from collections.abc import Sequence

    from markdown_it import MarkdownIt
    from markdown_it.renderer import RendererHTML
    from markdown_it.token import Token
    from markdown_it.utils import EnvType, OptionsDict
    from pygments.lexer import Lexer

_HIDDEN = re.compile("\ue000(\\d+)\ue001")
"""A set-aside span: private-use characters around its number, which Markdown leaves alone."""
_CODE = re.compile(r"<code[^>]*>.*?</code>", re.DOTALL)
_SAFE_LINK = {"target": "_blank", "rel": "noopener noreferrer"}


def to_html(text: str, *, typeset_math: bool = True) -> str:
    """HTML for (possibly partial) answer text; an unclosed code fence is closed first.
    ``typeset_math=False`` where nothing typesets math (VS Code's widgets): a ``$`` is then
    written plainly, and math shows as written."""
    aside = _SetAside(typeset_math)
    markdown = replace_math(close_open_fence(text), aside.hide)
    return aside.restore(_parser().render(markdown))


def cited_html(text: str, sources: Sources, *, typeset_math: bool = True) -> str:
    """:func:`to_html` with a numbered marker at each cited passage and the sources under it
    (see :mod:`.citations`): each marker's place is kept by a private-use character through the
    Markdown parser, then becomes our own markup; the model's text holds none of that character."""
    if not sources:
        return to_html(text, typeset_math=typeset_math)
    pieces = marked_pieces(text.replace(_AT_MARKER, "\ufffd"), sources)
    rendered = to_html("".join(p if isinstance(p, str) else _AT_MARKER for p in pieces), typeset_math=typeset_math)
    markers = iter([marker(p) for p in pieces if not isinstance(p, str)])
    return re.sub(_AT_MARKER, lambda _: next(markers, ""), rendered) + sources.html("\\$" if typeset_math else "&#36;")


_AT_MARKER = "\ue002"


class _SetAside:
    """Math and dollar signs, kept out of the Markdown parser's reach and put back after."""

    def __init__(self, typeset_math: bool) -> None:
        self._spans: list[tuple[str, str]] = []
        """(the source text, its HTML for MathJax) of each span set aside."""
        self._dollar = "\\$" if typeset_math else "$"
        """A literal dollar: escaped for MathJax (``processEscapes``), or plain where none runs."""

    def hide(self, kind: str, text: str) -> str:
        for_mathjax = self._dollar if kind in ("dollar", "escaped") else html.escape(text)
        self._spans.append((text, for_mathjax))
        return f"\ue000{len(self._spans) - 1}\ue001"

    def restore(self, rendered: str) -> str:
        """Spans inside code (an indented code block) come back as written, others for MathJax."""
        if not self._spans:
            return rendered

        def as_written(code: re.Match[str]) -> str:
            return _HIDDEN.sub(lambda m: html.escape(self._spans[int(m[1])][0]), code[0])

        rendered = _CODE.sub(as_written, rendered)
        return _HIDDEN.sub(lambda m: self._spans[int(m[1])][1], rendered)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False, "highlight": highlight_code}).enable(["table", "strikethrough"])
    parser.add_render_rule("link_open", _link_open)
    parser.add_render_rule("image", _image_as_link)
    return parser


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    for name, value in _SAFE_LINK.items():
        tokens[idx].attrSet(name, value)
    return self.renderToken(tokens, idx, options, env)


def _image_as_link(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    source = html.escape(str(token.attrGet("src") or ""))
    label = html.escape(self.renderInlineAsText(token.children or [], options, env)) or source
    attributes = " ".join(f'{name}="{value}"' for name, value in _SAFE_LINK.items())
    return f'<a href="{source}" {attributes}>image: {label}</a>'


# --- code -------------------------------------------------------------------------------------


def highlight_code(code: str, language: str, attributes: str = "") -> str:
    """Pygments token spans for a fenced block in a language it knows; "" leaves the block
    to markdown-it, which escapes it unhighlighted."""
    lexer = _lexer(language.strip().lower())
    if lexer is None:
        return ""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    return highlight(code, lexer, HtmlFormatter(nowrap=True))


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    if not language:
        return None
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language)
    except ClassNotFound:
        return None


def _token_colours() -> list[tuple[Any, str, str]]:
    """Pygments token types → (JupyterLab's editor colour variable, light-theme fallback)."""
    from pygments.token import Comment, Keyword, Name, Number, Operator, String

    return [
        (Comment, "--jp-mirror-editor-comment-color", "#408080"),
        (Keyword, "--jp-mirror-editor-keyword-color", "#008000"),
        (Operator.Word, "--jp-mirror-editor-keyword-color", "#008000"),
        (Operator, "--jp-mirror-editor-operator-color", "#aa22ff"),
        (String, "--jp-mirror-editor-string-color", "#ba2121"),
        (Number, "--jp-mirror-editor-number-color", "#008800"),
        (Name.Builtin, "--jp-mirror-editor-builtin-color", "#008000"),
        (Name.Function, "--jp-mirror-editor-def-color", "#0000ff"),
        (Name.Class, "--jp-mirror-editor-def-color", "#0000ff"),
        (Name.Decorator, "--jp-mirror-editor-meta-color", "#aa22ff"),
    ]


@lru_cache(maxsize=4)
def highlight_css(scope: str) -> str:
    """CSS colouring highlighted code under ``scope`` with the theme's editor colours, so it
    follows JupyterLab's light and dark themes (fallbacks elsewhere)."""
    from pygments.token import STANDARD_TYPES

    rules = []
    for token, css_class in STANDARD_TYPES.items():
        colour = next(((v, f) for t, v, f in _token_colours() if token in t), None)
        if colour is not None and css_class:
            style = "font-style: italic; " if "comment" in colour[0] else ""
            rules.append(f"{scope} pre code .{css_class} {{ {style}color: var({colour[0]}, {colour[1]}); }}")
    return "\n".join(rules)
