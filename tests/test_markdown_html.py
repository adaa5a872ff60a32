"""Answer Markdown as HTML for the chat panel: rendered, highlighted, math left for MathJax,
and nothing an answer says can become script or markup in the page."""

from __future__ import annotations

import re

import pytest

from claude_magic.testing.answers import RICH_MARKDOWN
from claude_magic.ui.render import protect_dollars, replace_math
from claude_magic.ui.safe_html import highlight_css, to_html
from claude_magic.ui.safe_markdown import LITERAL_DOLLAR, Markup


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=https://example.com></iframe>",
        "<style>body { display: none }</style>",
    ],
)
def test_raw_html_in_an_answer_is_shown_as_text(attack: str) -> None:
    rendered = to_html(f"Look: {attack} and\n\n{attack}\n")
    assert "<" + attack[1:] not in rendered
    assert attack.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in rendered


@pytest.mark.parametrize(
    "link",
    ["[click](javascript:alert(1))", "[click](JAVASCRIPT:alert(1))", "[click](vbscript:msgbox(1))", "<javascript:alert(1)>", "[x](file:///etc/passwd)"],
)
def test_unsafe_link_targets_are_not_links(link: str) -> None:
    assert "href" not in to_html(link)


def test_links_open_in_a_new_tab_without_an_opener() -> None:
    rendered = to_html("See [the docs](https://docs.anthropic.com/x?a=1&b=2) or <https://example.com>.")
    assert rendered.count('target="_blank" rel="noopener noreferrer"') == 2
    assert 'href="https://docs.anthropic.com/x?a=1&amp;b=2"' in rendered


def test_images_become_links_so_an_answer_cannot_make_the_browser_fetch() -> None:
    rendered = to_html('![a chart](https://example.com/track.png?secret=1 "t")')
    assert "<img" not in rendered
    assert '<a href="https://example.com/track.png?secret=1" target="_blank" rel="noopener noreferrer">image: a chart</a>' in rendered


def test_the_rich_answer_renders_heading_table_highlighted_code_and_lists() -> None:
    rendered = to_html(RICH_MARKDOWN + "\n- one\n- two\n\n1. first\n")
    assert "<h2>Left join vs inner join</h2>" in rendered
    assert re.search(r"<table>.*<th>join</th>.*<td>every left-hand key</td>.*</table>", rendered, re.DOTALL)
    assert '<pre><code class="language-python"><span class="kn">import</span>' in rendered
    assert '<span class="s2">"key"</span>' in rendered
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in rendered and "<ol>" in rendered


def test_markup_in_highlighted_code_is_escaped() -> None:
    rendered = to_html("```python\nprint('<script>alert(1)</script>')\n```")
    assert "<script>" not in rendered and "&lt;script&gt;alert" in rendered


def test_code_in_a_language_pygments_does_not_know_is_escaped_unhighlighted() -> None:
    rendered = to_html("```nosuchlang\n<b>x</b> $5\n```")
    assert rendered == '<pre><code class="language-nosuchlang">&lt;b&gt;x&lt;/b&gt; $5\n</code></pre>\n'


def test_a_partial_answer_with_an_open_fence_shows_its_code_as_code() -> None:
    assert to_html("Try:\n```python\nx = 1").endswith('<span class="mi">1</span>\n</code></pre>\n')


def test_math_is_left_verbatim_for_mathjax_and_dollars_that_are_not_math_are_escaped() -> None:
    rendered = to_html("Rows $n_{left} * m_{right}$ and $$\\frac{a}{b}$$; a coffee costs $5 and $10.")
    assert "$n_{left} * m_{right}$" in rendered  # no <em> from the underscores and stars
    assert "$$\\frac{a}{b}$$" in rendered
    assert "costs \\$5 and \\$10." in rendered


def test_math_is_html_escaped_and_code_keeps_its_dollars() -> None:
    rendered = to_html("If $a<b$ then `echo $HOME` prints\n\n    cost = $5  # indented code\n")
    assert "$a&lt;b$" in rendered
    assert "<code>echo $HOME</code>" in rendered
    assert "<pre><code>cost = $5  # indented code\n</code></pre>" in rendered


def test_math_in_a_table_cell_keeps_its_bars() -> None:
    rendered = to_html("| a | b |\n|---|---|\n| $|x|$ | 2 |\n")
    assert "<td>$|x|$</td>" in rendered


def test_replace_math_names_each_kind_and_leaves_code_alone() -> None:
    seen: list[tuple[str, str]] = []
    replace_math("$x$ $$y$$ \\$ costs $5.\n`$z$`\n```\n$w$\n```", lambda kind, text: seen.append((kind, text)) or text)
    assert seen == [("inline", "$x$"), ("display", "$$y$$"), ("escaped", "\\$"), ("dollar", "$")]
    assert protect_dollars("$x$ costs $5") == ["$x$ costs ", Markup(LITERAL_DOLLAR), "5"]


def test_highlighting_follows_the_themes_editor_colours() -> None:
    css = highlight_css(".scope")
    assert ".scope pre code .kn { color: var(--jp-mirror-editor-keyword-color, #008000); }" in css
    assert ".scope pre code .s2 { color: var(--jp-mirror-editor-string-color, #ba2121); }" in css
    assert ".scope pre code .c1 { font-style: italic; color: var(--jp-mirror-editor-comment-color" in css
    assert ".scope pre code .ow { color: var(--jp-mirror-editor-keyword-color" in css  # `in`, `and`: words, not symbols
