"""Model and server text reaches the page as text: payloads in answers, thinking, model ids,
stop reasons, model names and tool calls stay inert, and the Markdown still renders.

"Inert" is checked on the HTML a frontend would make of the Markdown, with markdown-it-py in
marked's place (raw HTML on, every link URL kept, as marked does): as JupyterLab renders a
trusted output (math taken out, the rest rendered, math put back unescaped quotes and all,
see :func:`jupyterlab_html`) and as a renderer without that step would. The browser test
(``test_browser.py``) checks the same payloads in a real JupyterLab.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

from claude_magic.testing import Reply, StandIn
from claude_magic.ui import safe_markdown as safe_markdown_module
from claude_magic.ui.render import code_span, display_markdown, fenced, literal_markdown, markdown_bundle
from claude_magic.ui.safe_markdown import Markup, independent_parts, jupyterlab_math, safe_markdown, url_is_safe

KEY = "sk-ant-markup-test-key-51c0de"

# Each payload would set window.__claude_xss_N if it ran; the numbers only tell them apart.
ATTACKS = [
    '<img src=x onerror="window.__claude_xss_1=1">',
    "<script>window.__claude_xss_2=1</script>",
    '<details open ontoggle="window.__claude_xss_3=1">',
    '<svg onload="window.__claude_xss_4=1">',
    '<!-- x --><img src=x onerror="window.__claude_xss_5=1">',
    '<a href="javascript:window.__claude_xss_6=1">x</a>',
    "[click](javascript:window.__claude_xss_7=1)",
    "[x](&#106;avascript:window.__claude_xss_8=1)",
    "[x](JAVASCRIPT:window.__claude_xss_10=1)",
    "[x](  javascript:window.__claude_xss_11=1)",
    "[x](javascript&colon;window.__claude_xss_12=1)",
    "[x][r]\n\n[r]: javascript:window.__claude_xss_13=1",
    "[x](<javascript:window.__claude_xss_14=1>)",
    "<javascript:window.__claude_xss_15=1>",
    "![x](javascript:window.__claude_xss_16=1)",
    "[x](data:text/html,<script>window.__claude_xss_17=1</script>)",
    "[x](vbscript:window.__claude_xss_18=1)",
    # code that is not code: escaped backticks, runs of other lengths, table cells, URLs, lists
    '\\`<img src=x onerror="window.__claude_xss_19=1">`',
    '`` ` `` <img src=x onerror="window.__claude_xss_21=1">',
    '| a | b |\n|---|---|\n| `x | <img src=x onerror="window.__claude_xss_22=1"> | y` |',
    '- a\n- b\n\n  ```\n<img src=x onerror="window.__claude_xss_25=1">\n  ```',
    'para\n    <img src=x onerror="window.__claude_xss_26=1">\n',
    '`a\\`<img src=x onerror="window.__claude_xss_27=1">`',
    # math that JupyterLab takes out before marked and puts back, quotes unescaped
    "[a](y '$\" onmouseover=\"window.__claude_xss_28=1\" x=\"$')",
    '![$a`"onerror="window.__claude_xss_29=1`b$](nonexistent.png)',
    '$a`$\n<img src=x onerror="window.__claude_xss_30=1">\n`',
    '- $a\n  $\n      <img src=x onerror="window.__claude_xss_31=1">',
    '-    $a\n- b$\n\n      <img src=x onerror="window.__claude_xss_32=1">',
    "\\\\(a\"b\\\\) [t](u '\\\\(\" onmouseover=\"window.__claude_xss_33=1\" x=\"\\\\)')",
    "[t](u '\\begin{x}\" onmouseover=\"window.__claude_xss_34=1\" y=\"\\end{x}')",
]
MARKED_ONLY = [
    # marked reads a bare URL as a link up to the next blank, backticks and all
    'https://x.org/`a <img src=x onerror="window.__claude_xss_23=1"> `',
    'www.x.org/`a ` q `<img src=x onerror="window.__claude_xss_24=1">`',
    # JupyterLab's code highlighter puts the info string into a class attribute as it is
    '```python" onmouseover="window.__claude_xss_36=1\n1 + 1\n```',
    '~~~python" onmouseover="window.__claude_xss_37=1\nx\n~~~',
    '- a\n  ```python" onmouseover="window.__claude_xss_38=1\n  x\n  ```',
]
"""Payloads that run in JupyterLab (see the browser test) but not in the markdown-it stand-in for marked."""

RICH = """\
## Joins

Use `<div>` and `a < b`; math $x < y$ and $$\\frac{a}{b}$$, a coffee costs $5 and a sandwich $10.

| tag | link |
|---|---|
| `<br>` | <https://example.com/docs> |

```html
<p class="x">hi</p>
```

    <indented> code

See [the docs](https://example.com "Docs"), mail <me@example.com>, ![a plot](https://example.com/p.png).
"""


class Page(HTMLParser):
    """The elements and text of an HTML fragment, attribute values decoded as a browser does."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def problems(self, own_tags: frozenset[str] = frozenset()) -> list[str]:
        """What could run script: unexpected tags, event handlers, links to unsafe URLs."""
        found = []
        for tag, attributes in self.elements:
            if tag not in SAFE_TAGS | own_tags:
                found.append(f"<{tag}>")
            found += [f"<{tag} {name}>" for name in attributes if name.startswith("on")]
            urls = {name: value for name, value in attributes.items() if name in ("href", "src")}
            found += [f"<{tag} {name}={value!r}>" for name, value in urls.items() if not url_is_safe(value)]
        return found


SAFE_TAGS = frozenset(
    ["p", "h1", "h2", "h3", "h4", "h5", "h6", "em", "strong", "code", "pre", "a", "img", "ul", "ol", "li", "blockquote", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s", "del", "span"]
)


def markdown_it(raw_html: bool = True) -> MarkdownIt:
    """markdown-it in marked's place: GFM tables, raw HTML on, every URL kept (marked filters none)."""
    parser = MarkdownIt("commonmark", {"html": raw_html}).enable(["table", "strikethrough"])
    parser.validateLink = lambda url: True  # type: ignore[method-assign]
    return parser


def jupyterlab_html(markdown: str) -> str:
    """The HTML JupyterLab puts into the page for a trusted Markdown output (rendermime's
    ``renderMarkdown``): math taken out, the rest rendered, each math span put back where its
    placeholder landed with only ``&<>`` escaped."""
    spans = jupyterlab_math(markdown)
    pieces, done = [], 0
    for number, (start, end) in enumerate(spans):
        pieces += [markdown[done:start], f"@@{number}@@"]
        done = end
    rendered = markdown_it().render("".join([*pieces, markdown[done:]]))
    math = [markdown[start:end].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for start, end in spans]
    return re.sub(r"@@(\d+)@@", lambda m: math[int(m[1])], rendered)


def problems(markdown: str, own_tags: frozenset[str] = frozenset()) -> list[str]:
    """What could run, in JupyterLab and in a frontend that takes no math out first."""
    return Page(jupyterlab_html(markdown)).problems(own_tags) + Page(markdown_it().render(markdown)).problems(own_tags)


def shown_text(markdown: str) -> str:
    return "".join(Page(markdown_it().render(markdown)).text).strip()


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_in_an_answer_can_run(attack: str) -> None:
    assert problems(attack), "the payload is inert on its own: it tests nothing"
    assert problems(display_markdown(attack)) == []


@pytest.mark.parametrize("attack", ATTACKS[:6])
def test_html_in_an_answer_is_shown_as_written(attack: str) -> None:
    assert shown_text(display_markdown(attack)).strip() == attack


def test_marked_only_payloads_lose_what_marked_would_run() -> None:
    url_then_code, url_then_codes, *fences = [display_markdown(attack) for attack in MARKED_ONLY]
    assert "&lt;img" in url_then_code and "&lt;img" in url_then_codes  # escaped: marked may not read them as code
    assert all('"' not in fence.splitlines()[fence.startswith("- ")] and "&quot;" in fence for fence in fences)


@pytest.mark.parametrize(
    "url",
    ["javascript:x", "JavaScript:x", " \x01javascript:x", "java\tscript:x", "java&#x09;script:x", "&#106;avascript:x",
     "javascript&colon;x", "javascript\\:x", "<javascript:x>", "data:text/html,x", "vbscript:x", "file:///etc"],
)
def test_unsafe_urls_are_recognised_however_they_are_written(url: str) -> None:
    assert not url_is_safe(url)


@pytest.mark.parametrize("url", ["https://example.com", "HTTP://x", "mailto:a@b.c", "#top", "a.html", "/a", "?q=1"])
def test_safe_urls_are_kept(url: str) -> None:
    assert url_is_safe(url)


def test_links_to_unsafe_urls_show_as_written_and_safe_ones_stay_links() -> None:
    shown = display_markdown("[click](javascript:alert(1)) and [docs](https://example.com) and [here](#top)")
    page = Page(markdown_it().render(shown))
    assert [a["href"] for tag, a in page.elements if tag == "a"] == ["https://example.com", "#top"]
    assert "[click](javascript:alert(1))" in "".join(page.text)


def test_markdown_still_renders() -> None:
    shown = display_markdown(RICH)
    rendered = jupyterlab_html(shown)
    assert problems(shown) == []
    assert "<h2>Joins</h2>" in rendered
    assert "<code>&lt;div&gt;</code>" in rendered and "<code>a &lt; b</code>" in rendered  # escaped once, as code
    assert "<td><code>&lt;br&gt;</code></td>" in rendered
    assert '<pre><code class="language-html">&lt;p class=&quot;x&quot;&gt;hi&lt;/p&gt;\n</code></pre>' in rendered
    assert "<pre><code>&lt;indented&gt; code\n</code></pre>" in rendered
    assert '<a href="https://example.com/docs">https://example.com/docs</a>' in rendered  # an autolink stays a link
    assert '<a href="https://example.com" title="Docs">the docs</a>' in rendered
    assert '<a href="mailto:me@example.com">me@example.com</a>' in rendered
    assert '<img src="https://example.com/p.png" alt="a plot" />' in rendered
    assert "$x \\lt  y$" in rendered and "$$\\frac{a}{b}$$" in rendered  # math for MathJax, < as TeX
    assert "a coffee costs <span>$</span>5 and a sandwich <span>$</span>10." in rendered  # prices stay prices


def test_plain_answers_are_left_as_they_are() -> None:
    text = "## Title\n\nSome *text*, `code`, a list:\n\n- one\n- two\n\n```python\nif a < b:\n    print(\"x\")\n```\n"
    assert display_markdown(text) == text


def test_only_the_callers_own_markup_stays_html() -> None:
    shown = safe_markdown(Markup("<sub>"), '<img src=x onerror="alert(1)">', Markup("</sub>"))
    assert shown == '<sub>&lt;img src=x onerror="alert(1)"></sub>'


def test_jupyterlab_math_pairs_delimiters_as_jupyterlab_does() -> None:
    text = "$a$ and $$b$$ \\\\(c\\\\) `$d$` \\$e $f{$}$ \\begin{x}g\\end{x} $h\n\ni$"
    spans = [text[start:end] for start, end in jupyterlab_math(text)]
    assert spans == ["$a$", "$$b$$", "\\\\(c\\\\)", "$f{$}$", "\\begin{x}g\\end{x}"]


# --- thinking and data --------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_in_the_thinking_can_run(attack: str) -> None:
    bundle = markdown_bundle("The answer.", thinking=attack)
    assert problems(bundle["text/markdown"], frozenset({"details", "summary"})) == []
    assert bundle["text/markdown"].startswith("<details><summary>Thinking</summary>\n\n")


@pytest.mark.parametrize("attack", [a for a in ATTACKS if "\n" not in a])
def test_literal_text_can_not_run_and_shows_as_written(attack: str) -> None:
    shown = f"<sub>{literal_markdown(attack)}</sub>"
    assert problems(shown, frozenset({"sub"})) == []
    assert shown_text(shown) == attack


def test_code_spans_and_fences_hold_any_backticks() -> None:
    tricky = 'a`b``<img src=x onerror="alert(1)">```'
    assert shown_text(code_span(tricky)) == tricky
    assert problems(code_span(tricky)) == []
    block = fenced(f"```\n{tricky}\n````", "python")
    assert problems(block) == []
    assert markdown_it().parse(block)[0].content == f"```\n{tricky}\n````\n"


# --- in a real kernel, against the stand-in ---------------------------------------------------

IMG = '<img src=x onerror="window.__claude_xss_{}=1">'


@pytest.fixture
def quiet(server: StandIn) -> StandIn:
    server.reset()
    server.tool_calls.clear()
    return server


@pytest.mark.kernel
def test_a_model_id_and_stop_reason_from_the_server_show_as_text(kernel: Any, quiet: StandIn) -> None:
    model, stop = f"claude-x{IMG.format('model')}", f"odd [x](javascript:void(0)) {IMG.format('stop')}"
    quiet.reply(model=model, stop_reason=stop)
    result = kernel.run("%%claude\nHello")
    assert result.status == "ok"
    footer = result.markdown()[-1]
    assert problems(footer, frozenset({"sub"})) == []
    assert model in shown_text(footer) and f"stop reason: {stop}" in shown_text(footer)


@pytest.mark.kernel
def test_thinking_from_the_model_shows_as_text(kernel: Any, quiet: StandIn) -> None:
    thinking = f"Let me think.\n\n{IMG.format('thinking')}\n\n[x](javascript:void(0))"
    quiet.reply(thinking=thinking, text=IMG.format("answer"))
    result = kernel.run("%%claude --think\nHello")
    assert result.status == "ok", result.outputs
    (answer,) = [d for d in result.displays() if d.get("display_id")]
    shown = answer["data"]["text/markdown"]
    assert problems(shown, frozenset({"details", "summary"})) == []
    assert IMG.format("thinking") in shown_text(shown) and IMG.format("answer") in shown_text(shown)


@pytest.mark.kernel
def test_model_names_and_ids_from_the_server_show_as_text(kernel: Any, quiet: StandIn) -> None:
    odd = {**quiet.models[0], "id": f"claude-`|{IMG.format('id')}", "display_name": f"Claude | *{IMG.format('name')}*"}
    quiet.models.insert(0, odd)
    result = kernel.run("%claude models")
    (table,) = result.markdown()
    assert problems(table) == []
    cells = [c for tag, c in Page(markdown_it().render(table)).elements if tag == "td"]
    rendered = markdown_it().render(table)
    assert html.escape(odd["display_name"]) in rendered
    assert f"<code>{html.escape(odd['id'])}</code>" in rendered
    assert len(cells) == 4 * len(quiet.models), "a | in a name or an id broke the table"


@pytest.mark.kernel
def test_a_tool_call_from_the_model_shows_as_text(kernel: Any, quiet: StandIn) -> None:
    kernel.run('def lookup(query: str) -> str:\n    """Look it up."""\n    return "found: " + query')
    quiet.tool_calls.extend(
        [
            ("lookup", {"query": f"```\n{IMG.format('tool_output')}\n"}),
            (f"no_such{IMG.format('tool_name')}", {f"key\n\n[x](javascript:void(0)) {IMG.format('tool_argument')}": 1}),
        ]
    )
    result = kernel.run("%claude --tools lookup Look it up")
    runs = [md for md in result.markdown() if md.startswith("<details>")]
    assert len(runs) == 2
    for shown in runs:
        assert problems(shown, frozenset({"details", "summary"})) == []
    assert f"found: ```\n{IMG.format('tool_output')}" in runs[0]


@pytest.mark.kernel
def test_compared_answers_history_and_usage_stay_text(kernel: Any, quiet: StandIn) -> None:
    quiet.reply(Reply(text=f"{IMG.format('compare')} [x](javascript:void(0))"), times=2)
    compared = kernel.run("%%claude --compare claude-sonnet-5-5,claude-haiku-5-5\nCompare")
    (grid,) = [d["data"]["text/markdown"] for d in compared.displays() if "cm-grid" in d["data"].get("text/markdown", "")]
    assert problems(grid, frozenset({"div", "sub"})) == []
    assert shown_text(grid).count(IMG.format("compare")) == 2
    kernel.run(f"%%claude\nIs {IMG.format('question')} [x](javascript:void(0)) safe? It costs $5 and $10.")
    for command in ("%claude history", "%claude usage"):
        (report,) = kernel.run(command).markdown()
        assert problems(report) == [], command
    assert IMG.format("question") in shown_text(kernel.run("%claude history").markdown()[0])


@pytest.mark.kernel
def test_an_error_message_from_the_server_is_one_line_of_text(kernel: Any, quiet: StandIn) -> None:
    quiet.fail(status=400, message=f"bad {IMG.format('error')}")
    result = kernel.run("%%claude\nHello")
    assert result.error is not None and IMG.format("error") in result.error["evalue"]
    assert result.markdown() == [] and not any("text/html" in d["data"] for d in result.displays())


# --- long answers are made safe in parts --------------------------------------------------------


def long_answer(sections: int) -> str:
    """Rich Markdown with every attack in it, long enough to be cut into parts."""
    return "".join(f"## Part {n}\n\n{RICH}\n{ATTACKS[n % len(ATTACKS)]}\n\n{MARKED_ONLY[n % len(MARKED_ONLY)]}\n\n" for n in range(sections))


def test_a_long_answer_is_made_safe_in_parts_as_it_would_be_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    text = long_answer(60)
    parts = independent_parts(text)
    assert len(parts) > 5 and "".join(parts) == text
    assert all(before.endswith("\n\n") and after[0].isalpha() for before, after in zip(parts, parts[1:]))
    in_parts = display_markdown(text)
    assert problems(in_parts) == []
    monkeypatch.setattr(safe_markdown_module, "PART_CHARS", len(text))
    assert independent_parts(text) == [text]
    assert display_markdown(text) == in_parts


def test_no_part_starts_inside_fenced_code() -> None:
    inside = "\n\n".join(f"Line {n} <b>{'x' * 80}</b>" for n in range(200))
    text = f"Intro\n\n```html\n{inside}\n```\n\n{long_answer(5)}"
    parts = independent_parts(text)
    assert all(not part.startswith("Line ") for part in parts)
    assert "<b>" in display_markdown(text).split("```html")[1].split("```")[0]  # the code is kept as written
