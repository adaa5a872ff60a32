"""A notebook as it is read outside Jupyter: executed by nbclient in a real kernel against the
stand-in, then exported by nbconvert to Markdown and HTML, as a user would share it.

The notebook has a cell's answer (prices beside math, and its footer), the chat panel with a
question asked in it after it opened, a ``--compare`` and ``%claude usage``. The exports must
read as the notebook did: prices with no backslash, the panel's conversation as text (not the
widget's repr), the compare grid without a style sheet, and every payload in an answer inert.
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter, MarkdownExporter
from test_safe_markdown import Page

from claude_magic.testing import StandIn
from claude_magic.testing.answers import RICH_MARKDOWN

pytestmark = pytest.mark.kernel

XSS = '<img src=x onerror="window.__claude_xss_export=1">'
CELL_ANSWER = f"{RICH_MARKDOWN}\n{XSS}"
PANEL_ANSWER = f"In the panel: a tea costs $3 and a cake $4, and $x^2$ stays math.\n\n{XSS}"
COMPARED = ["First: $5 or $10. <b>bold?</b>", "Second: about $7."]
CELLS = [
    "%load_ext claude_magic",
    "%%claude\nWhat do things cost?",
    (
        "from claude_magic.ui.panel import open_panel\n"
        "_magics = get_ipython().magics_manager.registry['ClaudeMagics']\n"
        "panel = open_panel(_magics.session, _magics.panel_settings, _magics.kernel_side())"
    ),
    "await panel.ask('And what does the panel say?')",
    "%%claude --compare claude-sonnet-5-5,claude-haiku-5-5\nCompare the prices",
    "%claude usage",
]
BACKSLASHED_PRICE = re.compile(r"\\+(?:\$|<span>&#36;)")
WIDGET_STATE = re.compile(r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>', re.DOTALL)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook, run top to bottom (each answer scripted, in the order asked)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env, StandIn(api_key="sk-ant-export-test") as server:
        env.setenv("ANTHROPIC_BASE_URL", server.base_url)
        env.setenv("ANTHROPIC_API_KEY", "sk-ant-export-test")
        env.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        env.setenv("CLAUDE_MAGIC_HOME", str(home))
        for text in [CELL_ANSWER, PANEL_ANSWER, *COMPARED]:
            server.reply(text=text)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(home)}}).execute()
        assert sorted(r.answer for r in server.message_requests if r.answer) == sorted([CELL_ANSWER, PANEL_ANSWER, *COMPARED])
    errors = [o for cell in notebook.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    return notebook


@pytest.fixture(scope="module")
def markdown(executed: Any) -> str:
    return str(MarkdownExporter().from_notebook_node(executed)[0])


@pytest.fixture(scope="module")
def html(executed: Any) -> str:
    return str(HTMLExporter().from_notebook_node(executed)[0])


def test_the_panels_display_says_what_it_is_and_its_transcript_has_the_latest_exchange(executed: Any) -> None:
    widget, shown = executed.cells[2].outputs
    assert "application/vnd.jupyter.widget-view+json" in widget.data
    assert widget.data["text/plain"] == "Claude chat panel"  # not VBox(children=(HTML(value='<style>…
    assert shown.data["text/plain"].endswith(f"You: And what does the panel say?\n\nClaude: {PANEL_ANSWER}")  # asked after it opened
    assert 'class="claude-chat-transcript"' in shown.data["text/markdown"]


def test_the_markdown_export_reads_as_the_notebook_did(markdown: str) -> None:
    assert "<style" not in markdown and "VBox(" not in markdown and "HTML(value=" not in markdown
    assert not BACKSLASHED_PRICE.search(markdown), BACKSLASHED_PRICE.findall(markdown)
    assert "≈ $0.0" in markdown  # a footer's cost: alone in its block, a plain dollar
    assert "You**\n\nAnd what does the panel say?\n\n**Claude**\n\nIn the panel: a tea costs <span>&#36;</span>3" in markdown
    assert "$x^2$ stays math" in markdown
    assert "First: <span>&#36;</span>5 or <span>&#36;</span>10. &lt;b>bold?&lt;/b>" in markdown and "Second: about $7." in markdown
    assert "| this session |" in markdown  # %claude usage
    assert XSS not in markdown and "&lt;img src=x onerror=" in markdown


def test_the_html_export_is_a_static_rendering_with_prices_math_and_nothing_that_runs(html: str) -> None:
    shown = WIDGET_STATE.sub("", html)  # nbclient saved the widgets' state: an online page would show the live panel from it
    page = Page(shown)
    text = re.sub(r"\s+", " ", "".join(page.text))
    template_styles = HTMLExporter().from_notebook_node(nbformat.v4.new_notebook())[0].count("<style")
    assert shown.count("<style") == template_styles  # none of ours
    assert "VBox(" not in shown and "\\$" not in text
    assert "A coffee costs $5 and a sandwich $10." in text
    assert "In the panel: a tea costs $3 and a cake $4, and $x^2$ stays math." in text  # math left for MathJax
    assert "First: $5 or $10. <b>bold?</b>" in text and "Second: about $7." in text
    assert 'class="cm-grid" style="display:grid' in html
    assert text.count(XSS) == 3  # as text: the cell's answer, then the transcript, which has the whole conversation
    ran = [(tag, name) for tag, attributes in page.elements for name, value in attributes.items() if "__claude_xss" in value]
    assert ran == [] and not any(tag == "img" and attributes.get("src") == "x" for tag, attributes in page.elements)


def test_a_saved_panel_without_widget_state_exports_its_label(executed: Any) -> None:
    """JupyterLab saves no widget state by default: nbconvert then falls back to the panel's own
    Markdown (not its repr), and the transcript follows it."""
    notebook = nbformat.from_dict({**executed, "metadata": {k: v for k, v in executed.metadata.items() if k != "widgets"}})
    page = Page(HTMLExporter().from_notebook_node(notebook)[0])
    text = re.sub(r"\s+", " ", "".join(page.text))
    assert "Claude chat panel: a live view while its kernel runs; its transcript follows." in text
    assert text.index("its transcript follows") < text.index("And what does the panel say?")
