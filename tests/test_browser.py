"""The chat panel in a real JupyterLab, driven in headless Chromium, against the stand-in.

One JupyterLab server (random port on 127.0.0.1, a token, a temporary root) and one page for
the module: cells are run from the UI (Shift+Enter) and the panel's widgets are used as a
user would, then the DOM and the stand-in's recorded requests are checked. The server runs
claude-magic's extension, as an installed package enables it: it holds the key, and the kernel
JupyterLab starts asks through its proxy. Screenshots go
to ``tests/artifacts/``. Without Debian's ``chromium`` or the ``playwright`` package the tests
are skipped, and the terminal summary says so loudly (see ``conftest.py``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_safe_markdown import ATTACKS, MARKED_ONLY, long_answer

from claude_magic.testing import StandIn

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
KEY = "sk-ant-browser-test-key-4f2a9c"


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if CHROMIUM is None:
        return "no Chromium found (/usr/bin/chromium); .ci/run installs it with apt-get install chromium"
    return None


MISSING = _missing()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(MISSING is not None, reason=f"BROWSER TESTS SKIPPED: {MISSING}"),
]

SETUP_AND_PANEL = """\
%load_ext claude_magic
import pandas as pd
sales = pd.DataFrame({"month": ["Jan", "Feb", "Mar"], "revenue": [120.5, 98.0, 143.25]})
%claude chat"""
LATER_FRAME = 'costs = pd.DataFrame({"item": ["rent", "staff"], "monthly_cost_eur": [2100, 5400]})'
FOLLOW_UP = "%%claude\nAnd what did we talk about in the panel?"
SECOND_PANEL = "import claude_magic\nclaude_magic.chat()"
RICH_CELL = "%%claude\nExplain left and inner joins, with a small pandas example [[markdown]]"
CELLS = [SETUP_AND_PANEL, LATER_FRAME, FOLLOW_UP, SECOND_PANEL, RICH_CELL]
ANSWERS = [*ATTACKS, *MARKED_ONLY, long_answer(40)]
"""Answers with script in them: each attack alone, then all in one answer long enough to be made safe in parts."""
def payload(source: str) -> str:
    return f'<img src=x onerror="window.__claude_xss_{source}=1">'


def payload_text(source: str) -> str:
    """A sentence with script in it, as a page's or a document's first sentence (what is cited)."""
    return f"{payload(source)} and $x\" onmouseover=\"window.__claude_xss_{source}_math=1\"$ said."


MARKUP_CELLS = [
    (
        '%load_ext claude_magic\ndef lookup(query: str) -> str:\n    """Look it up."""\n    return "found: " + query\n'
        "from pathlib import Path\n"
        f"Path('notes_xss.txt').write_text({payload_text('cited_document')!r})\n"
        "%config ClaudeMagics.mcp_servers = {'books': {'url': 'https://mcp.example.com/mcp'}}"
    ),
    f"for n in range({len(ANSWERS)}):\n    get_ipython().run_cell_magic('claude', '', f'Answer {{n}}')",
    "%%claude --think\nThink first",
    "%%claude\nWhich model answers?",
    "%claude models",
    "%claude --tools lookup Look it up",
    "%%claude --compare claude-sonnet-5-5,claude-haiku-5-5\nCompare",
    "%claude history",
    "%claude usage",
    "%%claude\nThis one fails",
    "%claude --web Search for it",
    "%claude --new --cite -a notes_xss.txt What do the notes say?",
    "%claude --mcp books Ask the books",
]
"""The second notebook: each cell shows text a model or a server sent, with script in it."""
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


@dataclass
class Chat:
    """The page with the notebook open and the first panel showing."""

    page: Any
    server: StandIn
    lab: Lab

    @property
    def panel(self) -> Any:
        return self.page.locator(".claude-chat").first

    def ask(self, question: str, *, press_enter: bool = True) -> None:
        box = self.panel.locator(".claude-chat-question input")
        box.fill(question)
        if press_enter:
            box.press("Enter")
        else:
            self.panel.locator("button.claude-chat-send").click()

    def last_answer(self) -> Any:
        return self.panel.locator(".claude-chat-assistant").last

    def status(self) -> Any:
        return self.panel.locator(".claude-chat-status")

    def wait_until_idle(self) -> None:
        from playwright.sync_api import expect

        expect(self.panel.locator("button.claude-chat-send")).to_be_enabled(timeout=30_000)

    def answered(self, question: str) -> None:
        """Wait for the answer quoting ``question`` (the stand-in's plain answer does), then for the
        panel idle with its footer: the status an earlier answer left matches "out tokens" too,
        and a loaded machine may not have taken the question yet."""
        from playwright.sync_api import expect

        expect(self.last_answer()).to_contain_text(question)
        self.wait_until_idle()
        expect(self.status()).to_contain_text("out tokens")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png")
        self.panel.screenshot(path=ARTIFACTS / f"{name}-panel.png")

    def run_cell(self, index: int) -> Any:
        """Select the cell and press Shift+Enter, again while its prompt still shows that it was
        never sent (a kernel still connecting drops it); then wait for it to finish."""
        from playwright.sync_api import expect

        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(index)
        prompt = cell.locator(".jp-InputPrompt")
        dialogs = self.page.locator(".jp-Dialog")
        if dialogs.count():
            self.page.screenshot(path=ARTIFACTS / "browser-dialog.png")
            pytest.fail(f"a dialog stands in the way: {dialogs.first.inner_text()!r}")
        for _ in range(6):
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Shift+Enter")
            deadline = time.monotonic() + 5
            while prompt.inner_text().strip() == "[ ]:" and time.monotonic() < deadline:
                time.sleep(0.1)
            if prompt.inner_text().strip() != "[ ]:":
                break
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)
        return cell


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _notebook(sources: list[str]) -> dict[str, Any]:
    cells = [{"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": source} for i, source in enumerate(sources)]
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}


def _write_settings(folder: Path) -> None:
    for name, values in SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def open_notebook(page: Any, lab: Lab, url_path: str, notebook: str) -> None:
    """Start the notebook's kernel session first, then open the page: a page that starts it
    itself may start two, and the one it then shuts down dies mid-import (a traceback in the
    server's log) or leaves a dialog open."""
    body = json.dumps({"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": "python3"}}).encode()
    request = urllib.request.Request(f"{lab.url}/api/sessions?token={lab.token}", data=body, method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    page.goto(f"{lab.url}/{url_path}{'&' if '?' in url_path else '?'}token={lab.token}")


def _wait_for_server(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not start within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, server: StandIn) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root, state = base / "root", base / "state"
    root.mkdir()
    (root / "chat.ipynb").write_text(json.dumps(_notebook(CELLS)))
    (root / "markup.ipynb").write_text(json.dumps(_notebook(MARKUP_CELLS)))
    _write_settings(state / "settings")
    (state / "config").mkdir(parents=True)
    extension = {"ServerApp": {"jpserver_extensions": {"claude_magic": True}}, "ClaudeServer": {"tier": "pro"}}
    (state / "config" / "jupyter_server_config.json").write_text(json.dumps(extension))
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": KEY,
        "CLAUDE_MAGIC_HOME": str(state / "claude-magic"),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "IPYTHONDIR": str(state / "ipython"),
    }
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",  # window.jupyterapp: its commands
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{url}/api/status?token={token}", process, log)
        yield Lab(url, token, root, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module; each fixture opens its pages in it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield found
        finally:
            found.close()


@pytest.fixture(scope="module")
def chat(browser: Any, lab: Lab, server: StandIn) -> Iterator[Chat]:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(30_000)
    try:
        open_notebook(page, lab, "lab/tree/chat.ipynb", "chat.ipynb")
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=60_000)
        found = Chat(page, server, lab)
        found.run_cell(0)
        expect(found.panel).to_be_visible()
        yield found
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "browser-last.png")
        page.close()


@pytest.fixture(autouse=True)
def quiet(server: StandIn) -> None:
    server.reset()


def test_a_question_streams_into_a_rendered_answer(chat: Chat) -> None:
    from playwright.sync_api import expect

    expect(chat.panel.locator(".claude-chat-model option")).to_have_count(7)  # filled from /v1/models
    chat.ask("Explain left and inner joins [[markdown]]")
    answer = chat.last_answer()
    expect(answer.locator("h2")).to_have_text("Left join vs inner join")
    expect(answer.locator("table tbody tr")).to_have_count(2)
    expect(answer.locator("pre code .kn").first).to_have_text("import")  # highlighted by Pygments
    expect(answer.locator("mjx-container").first).to_be_attached()  # math typeset by the frontend
    expect(answer).to_contain_text("A coffee costs $5 and a sandwich $10.")
    expect(chat.status()).to_contain_text("out tokens")
    chat.wait_until_idle()
    assert chat.panel.locator(".claude-chat-user").last.inner_text() == "Explain left and inner joins [[markdown]]"
    assert chat.server.message_requests[-1].body["stream"] is True
    chat.shot("browser-answer")


def test_the_kernel_jupyterlab_started_has_no_key_and_asks_through_the_server(chat: Chat) -> None:
    from playwright.sync_api import expect

    cell = _scratch_cell(chat, "import os\nprint('ANTHROPIC_API_KEY' in os.environ, os.environ['ANTHROPIC_BASE_URL'] == os.environ['CLAUDE_MAGIC_PROXY'])")
    expect(cell.locator(".jp-OutputArea")).to_contain_text("False True")
    _delete_cell(chat, cell)
    chat.ask("Who holds the key?")
    chat.answered("Who holds the key?")
    sent = chat.server.message_requests[-1]
    assert sent.headers["x-api-key"] == KEY and "authorization" not in sent.headers


def test_stop_ends_a_slow_answer_at_once_and_keeps_what_arrived(chat: Chat) -> None:
    from playwright.sync_api import expect

    chat.server.fail(delay=0.05)
    chat.ask("Tell me a long story [[words=600]]", press_enter=False)
    answer = chat.last_answer()
    expect(answer).to_contain_text("stream tokens arrive")
    chat.panel.locator("button.claude-chat-stop").click()
    clicked = time.monotonic()
    while chat.server.active_streams and time.monotonic() - clicked < 5:
        time.sleep(0.01)
    assert time.monotonic() - clicked < 0.5, "the stream was still open half a second after Stop"
    expect(chat.status()).to_contain_text("stopped; the partial answer above is kept", timeout=2_000)
    kept = answer.inner_text()
    time.sleep(0.5)
    assert answer.inner_text() == kept, "the answer kept growing after Stop"
    full = chat.server.message_requests[-1].answer or ""
    assert 0 < len(kept) < len(full) / 2
    chat.shot("browser-stopped")


def test_errors_are_one_line_in_the_panel_and_a_partial_answer_stays(chat: Chat) -> None:
    from playwright.sync_api import expect

    chat.server.fail(status=400, message="messages: the stand-in refuses this one")
    chat.ask("Will this be refused?")
    expect(chat.status()).to_contain_text("the API refused the request (400 messages: the stand-in refuses this one)")
    expect(chat.status()).to_have_class(re.compile("claude-chat-error"))
    expect(chat.panel.locator(".claude-chat-question input")).to_have_value("Will this be refused?")  # to resend

    chat.server.fail(error_after=8, message="Overloaded")
    chat.ask("And this one breaks off [[markdown]]")
    expect(chat.status()).to_contain_text("cut off by an error")
    expect(chat.last_answer().locator("h2")).to_have_text("Left join vs inner join")
    chat.shot("browser-error")
    assert "Traceback" not in chat.page.locator(".jp-Notebook").inner_text()
    assert "Traceback" not in chat.lab.log.read_text()


def test_a_dataframe_picked_after_refresh_is_attached_and_html_stays_text(chat: Chat) -> None:
    from playwright.sync_api import expect

    chat.run_cell(1)  # defines `costs` after the panel opened
    picker = chat.panel.locator(".claude-chat-attachments select")
    expect(picker.locator("option")).to_have_text(["sales · pandas DataFrame 3×2"])
    chat.panel.locator("button.claude-chat-refresh").click()
    expect(picker.locator("option")).to_have_text(["costs · pandas DataFrame 2×2", "sales · pandas DataFrame 3×2"])
    picker.select_option(label="costs · pandas DataFrame 2×2")
    chat.panel.locator(".claude-chat-model select").select_option("claude-haiku-5-5")
    chat.ask('What do we spend most on? <img src=x onerror="window.__claude_xss = 1">')
    answer = chat.last_answer()
    expect(answer).to_contain_text('<img src=x onerror="window.__claude_xss = 1">')  # the stand-in quotes the question
    expect(chat.panel.locator(".claude-chat-user").last).to_contain_text("attached: costs")
    sent = chat.server.message_requests[-1]
    assert sent.body["model"] == "claude-haiku-5-5"
    blocks = sent.messages[-1]["content"]
    assert blocks[0]["text"].startswith("Attached `costs` (pandas DataFrame)")
    assert "monthly_cost_eur" in blocks[0]["text"] and "2 rows × 2 columns" in blocks[0]["text"]
    assert chat.page.evaluate("window.__claude_xss") is None
    assert answer.locator("img").count() == 0
    expect(picker.locator("option:checked")).to_have_count(0)  # attachments go with one question
    chat.shot("browser-attached")


def test_cells_and_panels_share_one_conversation(chat: Chat) -> None:
    from playwright.sync_api import expect

    chat.wait_until_idle()
    chat.ask("Remember the word pelican")
    chat.answered("Remember the word pelican")
    cell = chat.run_cell(2)  # %%claude follow-up
    expect(cell.locator(".jp-OutputArea")).to_contain_text("And what did we talk about in the panel?")
    prompts = chat.server.message_requests[-1].prompts()
    assert prompts[-2:] == ["Remember the word pelican", "And what did we talk about in the panel?"]

    chat.run_cell(3)  # claude_magic.chat(): a second panel shows the cell's exchange
    second = chat.page.locator(".claude-chat").nth(1)
    expect(second.locator(".claude-chat-user").last).to_have_text("And what did we talk about in the panel?")
    expect(second.locator(".claude-chat-assistant").last).to_contain_text("Stand-in answer")
    second.screenshot(path=ARTIFACTS / "browser-second-panel.png")


def test_a_cell_answer_streams_into_rendered_markdown(chat: Chat) -> None:
    from playwright.sync_api import expect

    cell = chat.run_cell(4)  # %%claude with the stand-in's rich Markdown answer
    output = cell.locator(".jp-OutputArea")
    expect(output.locator("h2")).to_contain_text("Left join vs inner join")
    expect(output.locator("table tbody tr")).to_have_count(2)
    expect(output.locator("mjx-container").first).to_be_attached()  # math typeset by the frontend
    expect(output).to_contain_text("out tokens")  # the footer: the answer is complete
    cell.screenshot(path=ARTIFACTS / "browser-cell-answer.png")


def test_a_price_in_a_cell_answer_stays_a_price(chat: Chat) -> None:
    from playwright.sync_api import expect

    output = chat.page.locator(".jp-Notebook .jp-Cell").nth(4).locator(".jp-OutputArea")  # the answer of the test above
    expect(output).to_contain_text("A coffee costs $5 and a sandwich $10.", timeout=2_000)


# --- a long history: the browser's cost of an update must not grow with it --------------------

EARLIER_ANSWER = (
    "## A past answer\n\nSome *prose* about the data, with `code` and a list:\n\n- one point\n- another point\n\n"
    "```python\ndf.groupby('region').revenue.sum()\n```\n\nAnd a closing paragraph that wraps over a few lines of the panel.\n\n"
) * 2
PANEL_WITH_HISTORY = (
    "from claude_magic.core.conversation import CellRun, Exchange\n"
    "from claude_magic.ui.panel import open_panel\n"
    "_magics = get_ipython().magics_manager.registry['ClaudeMagics']\n"
    "_kept = globals().get('_kept', list(_magics.session.conversation.exchanges))\n"
    "_magics.session.conversation.exchanges[:] = [Exchange([{{'type': 'text', 'text': f'Question {{n}}'}}], [{{'type': 'text', 'text': {answer!r}}}], CellRun()) for n in range({earlier})]\n"
    "_panel = open_panel(_magics.session, _magics.panel_settings, _magics.kernel_side())"
)
CLOSE_PANEL = (
    "def _close(widget):\n"
    "    for child in getattr(widget, 'children', ()):\n"
    "        _close(child)\n"
    "    widget.close()\n"
    "\n"
    "_close(_panel.widget)"
)
"""The panel's widgets closed, so that those of the earlier panels do not weigh on the later ones."""
SLOW_QUESTION = "Stream a long answer slowly [[words=600]] [[delay=0.01]]"
"""Taller than the history's view: it must scroll as it grows, even with no history before it."""


def _scratch_cell(chat: Chat, code: str) -> Any:
    """A new cell at the end of the notebook, run; remove it with :func:`_delete_cell`."""
    from playwright.sync_api import expect

    cells = chat.page.locator(".jp-Notebook .jp-Cell")
    cells.last.locator(".jp-InputArea-editor").click()
    chat.page.keyboard.press("Escape")
    chat.page.keyboard.press("b")  # a new cell below the last
    cell = cells.last
    cell.locator(".jp-InputArea-editor").click()
    chat.page.keyboard.insert_text(code)
    expect(cell.locator(".cm-content")).to_contain_text(code.splitlines()[-1])
    return chat.run_cell(cells.count() - 1)


def _delete_cell(chat: Chat, cell: Any) -> None:
    cell.locator(".jp-InputPrompt").click()
    chat.page.keyboard.press("Escape")
    chat.page.keyboard.press("d")
    chat.page.keyboard.press("d")


def _last_message_in_view(panel: Any) -> bool:
    return bool(
        panel.evaluate(
            """panel => {
                const view = panel.querySelector('.claude-chat-history').getBoundingClientRect();
                const last = [...panel.querySelectorAll('.claude-chat-assistant')].pop().getBoundingClientRect();
                return last.height > 0 && last.bottom <= view.bottom + 2 && last.bottom > view.top;
            }"""
        )
    )


def _main_thread_ms_per_update(chat: Chat, panel: Any) -> float:
    """The renderer's main-thread CPU time in script, style, layout and paint (thread time,
    which another busy process does not inflate) while a slow answer streams into ``panel``,
    per update of its history (DOM changes, counted by a MutationObserver). The last message
    must stay in view as it grows past the history's height, and once finished."""
    from playwright.sync_api import expect

    panel.evaluate(
        """panel => { window.__updates = 0; new MutationObserver(() => window.__updates++)
            .observe(panel.querySelector('.claude-chat-messages'), {subtree: true, childList: true, characterData: true}); }"""
    )
    _settle(chat.page)
    browser = chat.page.context.browser
    browser.start_tracing(page=chat.page, categories=["toplevel", "devtools.timeline"])
    try:
        panel.locator(".claude-chat-question input").fill(SLOW_QUESTION)
        panel.locator(".claude-chat-question input").press("Enter")
        expect(panel.locator(".claude-chat-assistant").last).to_contain_text("stream tokens arrive", timeout=30_000)
        history = panel.locator(".claude-chat-history").element_handle()
        chat.page.wait_for_function("view => view.scrollHeight > view.clientHeight + 100", arg=history, polling=100, timeout=30_000)
        assert _last_message_in_view(panel), "the answer grows out of view"
        expect(panel.locator(".claude-chat-status")).to_contain_text("out tokens", timeout=60_000)
    finally:
        trace = json.loads(browser.stop_tracing())["traceEvents"]
    assert _last_message_in_view(panel), "the finished answer is out of view"
    updates = int(panel.evaluate("() => window.__updates"))
    assert updates >= 10
    return _main_thread_cpu_ms(trace) / updates


def _settle(page: Any) -> None:
    """Collect the page's garbage (a cell just deleted leaves plenty), then wait until it has
    been idle for a while (a new panel typesets its history after it shows), 10 s at most."""
    page.context.new_cdp_session(page).send("HeapProfiler.collectGarbage")
    page.evaluate(
        """() => new Promise(settled => {
            let quiet = 0;
            const idle = deadline => { quiet = deadline.timeRemaining() > 40 ? quiet + 1 : 0; quiet >= 10 ? settled() : requestIdleCallback(idle); };
            requestIdleCallback(idle);
            setTimeout(settled, 10_000);
        })"""
    )


WORK = frozenset(
    {"FunctionCall", "EventDispatch", "TimerFire", "FireAnimationFrame", "FireIdleCallback", "RunMicrotasks", "EvaluateScript", "ParseHTML",
     "UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize", "HitTest", "IntersectionObserverController::computeIntersections"}
)
"""What Chrome's traces call running script and updating style, layout and paint (the work an
update causes, without the messaging around it, whose share varies with what else is going on)."""


def _main_thread_cpu_ms(trace: list[dict[str, Any]]) -> float:
    """The renderer main threads' CPU time in :data:`WORK` (nested events counted once)."""
    main = {(e["pid"], e["tid"]) for e in trace if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    spans = sorted((e["tts"], e["tts"] + e["tdur"]) for e in trace if e.get("name") in WORK and (e["pid"], e["tid"]) in main and "tdur" in e)
    total, reached = 0, 0
    for start, end in spans:
        total += max(0, end - max(start, reached))
        reached = max(reached, end)
    return total / 1000


def test_an_update_costs_the_browser_no_more_with_200_earlier_exchanges(chat: Chat) -> None:
    """The history used to be laid out and painted again on every update of the answer. With
    none, nothing of it is on screen (the answer must still scroll into view as it grows); 20
    exchanges fill the view, so the cost of showing some history is in both figures compared
    and their ratio is what the history's length adds."""
    from playwright.sync_api import expect

    costs: dict[int, list[float]] = {0: [], 20: [], 200: []}
    try:
        for earlier in (0, 20, 200, 200, 20, 20, 200):  # a drift over the runs (a busy machine) weighs on 20 and 200 alike
            cell = _scratch_cell(chat, PANEL_WITH_HISTORY.format(earlier=earlier, answer=EARLIER_ANSWER))
            panel = chat.page.locator(".claude-chat").last
            expect(panel.locator(".claude-chat-user")).to_have_count(earlier)
            costs[earlier].append(_main_thread_ms_per_update(chat, panel))
            panel.screenshot(path=ARTIFACTS / f"browser-history-{earlier}-panel.png")
            _delete_cell(chat, _scratch_cell(chat, CLOSE_PANEL))
            _delete_cell(chat, cell)
    finally:
        _delete_cell(chat, _scratch_cell(chat, "_magics.session.conversation.exchanges[:] = _kept"))
    # the least of each: a collection or a late typesetting pass lands in one run, not in every one
    none, short, long = (min(costs[n]) for n in (0, 20, 200))
    assert long / short < 1.5, f"main-thread CPU per update: {none:.1f} ms after no exchange, {short:.1f} ms after 20, {long:.1f} ms after 200"


# --- model and server text never runs as script ------------------------------------------------


PAGE_SCRIPT_FOUND = """() => {
  const found = Object.keys(window).filter(k => k.startsWith('__claude_xss'));
  document.querySelectorAll('.jp-OutputArea-output *').forEach(e => {
    if (/^(SCRIPT|IFRAME|OBJECT|EMBED)$/.test(e.tagName)) found.push(e.tagName);
    for (const a of e.attributes) {
      if (/^on/i.test(a.name)) found.push(`${e.tagName} ${a.name}`);
      if (/^(href|src)$/i.test(a.name) && /^\\s*(javascript|vbscript|data):/i.test(a.value)) found.push(`${e.tagName} ${a.name}=${a.value}`);
    }
  });
  return found;
}"""
"""What in the page could run or has run: flags the payloads set, and elements with script."""


def test_model_and_server_text_never_runs_live_or_after_reopening(chat: Chat) -> None:
    from playwright.sync_api import expect

    context = chat.page.context.browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    notebook = Chat(page, chat.server, chat.lab)
    server = chat.server
    try:
        open_notebook(page, chat.lab, "lab/workspaces/markup/tree/markup.ipynb?reset", "markup.ipynb")
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=60_000)
        notebook.run_cell(0)
        for answer in ANSWERS:
            server.reply(text=answer)
        notebook.run_cell(1)
        server.reply(thinking=f"Let me think.\n\n{payload('thinking')}\n\n[x](javascript:window.__claude_xss_thinking=1)")
        notebook.run_cell(2)
        server.reply(model=f"claude-x{payload('model')}", stop_reason=payload("stop_reason"))
        notebook.run_cell(3)
        server.models.insert(0, {**server.models[0], "id": f"claude-`|{payload('model_id')}", "display_name": payload("display_name")})
        notebook.run_cell(4)
        server.tool_calls.extend([("lookup", {"query": payload("tool_output")}), (f"x{payload('tool_name')}", {f"k\n\n{payload('tool_argument')}": 1})])
        notebook.run_cell(5)
        server.reply(text=payload("compare"), times=2)
        notebook.run_cell(6)
        notebook.run_cell(7)
        notebook.run_cell(8)
        server.fail(status=400, message=payload("error"))
        notebook.run_cell(9)
        server.web.results = [(payload("search_title"), f"https://x.org/{payload('search_url')}"), (payload("search_title_2"), "javascript:window.__claude_xss_search_js=1")]
        server.web.pages[f"https://x.org/{payload('search_url')}"] = (payload("page_title"), payload_text("cited_page"))
        notebook.run_cell(10)
        notebook.run_cell(11)
        server.web.mcp_results["books"] = payload("mcp_result")
        notebook.run_cell(12)
        _check_nothing_ran_and_payloads_show_as_text(page)

        page.locator(".jp-Notebook").click()
        page.keyboard.press("Control+s")
        saved = chat.lab.root / "markup.ipynb"
        deadline = time.monotonic() + 30
        while payload("error") not in saved.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        _assert_trusted(saved)
        page.reload()  # the notebook reopens from the saved file, trusted: its outputs render as HTML again
        expect(page.locator(".jp-Notebook .jp-Cell").nth(9).locator(".jp-OutputArea")).to_contain_text("claude:", timeout=60_000)
        _check_nothing_ran_and_payloads_show_as_text(page)
        page.screenshot(path=ARTIFACTS / "browser-markup-reopened.png", full_page=True)
    finally:
        page.screenshot(path=ARTIFACTS / "browser-markup-last.png")
        server.tool_calls.clear()
        server.web = type(server.web)()
        context.close()


def _check_nothing_ran_and_payloads_show_as_text(page: Any) -> None:
    from playwright.sync_api import expect

    cells = page.locator(".jp-Notebook .jp-Cell")
    expect(cells.nth(9).locator(".jp-OutputArea")).to_contain_text(f"the API refused the request (400 {payload('error')})")
    for index in range(cells.count()):
        cells.nth(index).scroll_into_view_if_needed()  # images load, and their onerror would fire
    time.sleep(1)
    assert page.evaluate(PAGE_SCRIPT_FOUND) == []
    expect(cells.nth(1).locator(".jp-OutputArea")).to_contain_text('<img src=x onerror="window.__claude_xss_1=1">')
    expect(cells.nth(1).locator(".jp-OutputArea")).to_contain_text("[click](javascript:window.__claude_xss_7=1)")
    expect(cells.nth(2).locator(".jp-OutputArea details")).to_have_count(1)  # the thinking, collapsed
    expect(cells.nth(2).locator(".jp-OutputArea")).to_contain_text(payload("thinking"))
    expect(cells.nth(3).locator(".jp-OutputArea sub")).to_contain_text(f"claude-x{payload('model')}")
    expect(cells.nth(3).locator(".jp-OutputArea sub")).to_contain_text(f"stop reason: {payload('stop_reason')}")
    expect(cells.nth(4).locator(".jp-OutputArea td").first).to_have_text(f"claude-`|{payload('model_id')}")
    expect(cells.nth(4).locator(".jp-OutputArea td").nth(1)).to_have_text(payload("display_name"))
    expect(cells.nth(5).locator(".jp-OutputArea")).to_contain_text(f"found: {payload('tool_output')}")
    expect(cells.nth(5).locator(".jp-OutputArea summary").nth(1)).to_contain_text(payload("tool_name"))
    expect(cells.nth(6).locator(".jp-OutputArea .cm-col")).to_contain_text([payload("compare")] * 2)
    expect(cells.nth(7).locator(".jp-OutputArea table")).to_contain_text("Answer 0")
    expect(cells.nth(8).locator(".jp-OutputArea table")).to_contain_text("this session")
    expect(cells.nth(10).locator(".jp-OutputArea summary")).to_contain_text("→ 2 results")
    expect(cells.nth(10).locator(".jp-OutputArea")).to_contain_text(payload("search_title_2"))
    expect(cells.nth(10).locator(".jp-OutputArea .claude-sources")).to_contain_text(payload("search_title"))
    expect(cells.nth(11).locator(".jp-OutputArea .claude-sources")).to_contain_text(payload("cited_document"))
    expect(cells.nth(12).locator(".jp-OutputArea")).to_contain_text(payload("mcp_result"))


def _assert_trusted(path: Path) -> None:
    """The saved notebook is signed: JupyterLab trusts it on reopening (its HTML is not sanitised)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    assert NotebookNotary().check_signature(nbformat.read(path, as_version=4)), "the saved notebook is not trusted"


# --- the same answer in JupyterLab and Notebook 7, light and dark -----------------------------

FRONTENDS = {"JupyterLab": "lab/workspaces/{slug}/tree/{notebook}?reset", "Notebook 7": "notebooks/{notebook}"}
"""Where each opens a notebook (JupyterLab in a workspace of its own, without the other tests' tabs)."""
FRONTEND_CELLS = [
    '%load_ext claude_magic\ndef lookup(query: str) -> str:\n    """Look it up."""\n    return "found: " + query',
    "%%claude\nExplain left and inner joins [[markdown]]",
    "%claude --tools lookup Look it up",
    "%claude chat",
]
STYLES = """root => {
  const answer = [...root.querySelectorAll('.claude-chat-assistant')].filter(a => a.querySelector('table')).pop();
  const cell = root.querySelectorAll('.jp-Notebook .jp-Cell')[1].querySelector('.jp-OutputArea');
  const style = (element, property) => element ? getComputedStyle(element)[property] : null;
  const looks = within => ({
    pre: style(within.querySelector('pre'), 'backgroundColor'),
    code: style(within.querySelector('pre code'), 'backgroundColor'),
    cell: style(within.querySelector('td'), 'textAlign'),
    heading: style(within.querySelector('th'), 'textAlign'),
    table: style(within.querySelector('table'), 'marginLeft'),
  });
  return {panel: looks(answer), cell: looks(cell), dark: document.body.dataset.jpThemeLight === 'false'};
}"""
"""How code blocks and tables look in the panel's last answer with a table and in the cell's answer."""


@dataclass
class Frontend(Chat):
    name: str = ""

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "")

    def theme(self, theme: str) -> None:
        """Switch the theme as its menu does (JupyterLab's command; Notebook 7 has the same)."""
        self.page.evaluate("theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme)
        self.page.wait_for_function("dark => (document.body.dataset.jpThemeLight === 'false') === dark", arg=theme.endswith("Dark"))

    def styles(self) -> dict[str, Any]:
        return dict(self.page.evaluate(STYLES, self.page.locator("body").element_handle()))

    def saved_transcript(self) -> str:
        """Save the notebook (as its menu does) and read the panel's transcript from the file."""
        path = self.lab.root / f"frontend-{self.slug}.ipynb"
        before = path.stat().st_mtime_ns
        self.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        deadline = time.monotonic() + 30
        while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.2)
        outputs = [o for cell in json.loads(path.read_text())["cells"] for o in cell.get("outputs", [])]
        (shown,) = [o["data"] for o in outputs if "claude-chat-transcript" in "".join(o.get("data", {}).get("text/markdown", ""))]
        return "".join(shown["text/plain"])


@pytest.fixture(scope="module", params=list(FRONTENDS))
def frontend(request: pytest.FixtureRequest, browser: Any, lab: Lab, server: StandIn) -> Iterator[Frontend]:
    """A notebook of its own open in JupyterLab or in Notebook 7, on the module's server."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(30_000)
    found = Frontend(page, server, lab, request.param)
    notebook = f"frontend-{found.slug}.ipynb"
    (lab.root / notebook).write_text(json.dumps(_notebook(FRONTEND_CELLS)))
    try:
        open_notebook(page, lab, FRONTENDS[found.name].format(slug=found.slug, notebook=notebook), notebook)
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_be_visible(timeout=60_000)
        found.run_cell(0)
        yield found
    finally:
        page.screenshot(path=ARTIFACTS / f"{found.slug}-last.png")
        if page.evaluate("document.body.dataset.jpThemeLight") == "false":
            found.theme("JupyterLab Light")  # the setting is the server's: later pages open light
        page.close()


def test_a_cell_answer_shows_prices_math_and_its_footer(frontend: Frontend) -> None:
    from playwright.sync_api import expect

    output = frontend.run_cell(1).locator(".jp-OutputArea")
    expect(output.locator("h2")).to_contain_text("Left join vs inner join")
    expect(output.locator("table tbody tr")).to_have_count(2)
    expect(output.locator("mjx-container")).to_have_count(2)  # $n_{left}$ and the $$…$$ fraction, typeset
    expect(output).to_contain_text("A coffee costs $5 and a sandwich $10.")
    expect(output.locator("sub")).to_contain_text(re.compile(r"out tokens · ≈ \$0\.\d{4} · first token"))
    assert "\\$" not in output.inner_text()
    output.screenshot(path=ARTIFACTS / f"{frontend.slug}-light-answer.png")


def test_a_tool_round_shows_its_text_whole_and_the_call(frontend: Frontend) -> None:
    from playwright.sync_api import expect

    frontend.server.tool_calls.append(("lookup", {"query": "prices"}))
    output = frontend.run_cell(2).locator(".jp-OutputArea")
    expect(output.locator("summary")).to_have_text("🔧 lookup(query='prices') → result")
    expect(output).to_contain_text("I'll use the tool lookup.")  # the text before the call, whole
    expect(output).to_contain_text("out tokens")
    first, second = frontend.server.message_requests[-2:]
    assert [tool["name"] for tool in first.body["tools"]] == ["lookup"]
    assert second.messages[-1]["content"][0]["content"] == "found: prices"


def test_the_panel_shows_math_and_prices_and_stop_keeps_what_arrived(frontend: Frontend) -> None:
    from playwright.sync_api import expect

    frontend.run_cell(3)
    expect(frontend.panel).to_be_visible()
    expect(frontend.page.locator(".claude-chat-transcript")).to_be_hidden()  # for the notebook as saved
    frontend.ask("Explain left and inner joins [[markdown]]")
    answer = frontend.last_answer()
    expect(answer.locator("mjx-container").first).to_be_attached()
    expect(answer).to_contain_text("A coffee costs $5 and a sandwich $10.")
    expect(frontend.status()).to_contain_text("out tokens")
    frontend.wait_until_idle()
    frontend.panel.screenshot(path=ARTIFACTS / f"{frontend.slug}-light-panel.png")

    frontend.server.fail(delay=0.05)
    frontend.ask("Tell me a long story [[words=600]]", press_enter=False)
    expect(frontend.last_answer()).to_contain_text("stream tokens arrive")
    frontend.panel.locator("button.claude-chat-stop").click()
    expect(frontend.status()).to_contain_text("stopped; the partial answer above is kept")
    kept = frontend.last_answer().inner_text()
    assert 0 < len(kept) < len(frontend.server.message_requests[-1].answer or "") / 2
    frontend.wait_until_idle()
    frontend.page.screenshot(path=ARTIFACTS / f"{frontend.slug}-light.png")
    transcript = frontend.saved_transcript()
    assert "You: Explain left and inner joins [[markdown]]\n\nClaude: ## Left join vs inner join" in transcript
    assert f"You: Tell me a long story [[words=600]]\n\nClaude: {kept.strip()[:40]}" in transcript  # the latest, cut off


def test_code_blocks_and_tables_in_the_panel_look_as_in_a_cell_in_light_and_dark(frontend: Frontend) -> None:
    """In the dark theme every code line in the panel had a black band (the code's background
    was not its block's), and the panel's tables were centred with right-aligned cells."""
    for theme in ("JupyterLab Light", "JupyterLab Dark"):
        frontend.theme(theme)
        looks = frontend.styles()
        panel, cell = looks["panel"], looks["cell"]
        assert panel["code"] == panel["pre"], (theme, looks)
        assert (panel["cell"], panel["heading"], panel["table"]) == (cell["cell"], cell["heading"], cell["table"]), (theme, looks)
    frontend.panel.scroll_into_view_if_needed()
    frontend.panel.screenshot(path=ARTIFACTS / f"{frontend.slug}-dark-panel.png")
    frontend.page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea").screenshot(path=ARTIFACTS / f"{frontend.slug}-dark-answer.png")
    frontend.page.screenshot(path=ARTIFACTS / f"{frontend.slug}-dark.png")
