"""The chat panel without a browser: real widgets in this process, a real IPython shell and the
magics, answers from the stand-in, and the panel's callbacks run on an asyncio loop the way
the kernel runs them. (tests/test_browser.py drives the same panel in JupyterLab.)"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from claude_magic.attach.notebook import DisplayedImage
from claude_magic.core.conversation import Exchange
from claude_magic.magics import ClaudeMagics
from claude_magic.testing import StandIn
from claude_magic.ui.panel import ChatPanel, PanelAnswer, PanelSettings, _display, open_panel
from claude_magic.ui.wording import ClaudeMagicError


@pytest.fixture
def magics(shared_stand_in: StandIn, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClaudeMagics]:
    """The magics on a plain IPython shell of their own (no kernel, no notebook store)."""
    monkeypatch.setenv("CLAUDE_MAGIC_HOME", str(tmp_path / "claude-magic"))
    shell = InteractiveShell(config=Config({"HistoryManager": {"hist_file": ":memory:"}}))
    found = ClaudeMagics(shell)
    shell.register_magics(found)
    yield found
    found.close()


def panel_of(magics: ClaudeMagics) -> ChatPanel:
    """A panel as ``%claude chat`` makes it: the session, the settings, the kernel side."""
    return ChatPanel(magics.session, magics.panel_settings, magics.kernel_side())


def run(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(make())


def text_of(widget: Any) -> str:
    return str(widget.value)


def png(width: int = 24, height: int = 16) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def test_opening_lists_the_models_and_shows_the_notebooks_conversation(magics: ClaudeMagics) -> None:
    magics.session.conversation.record(
        Exchange(
            question=[{"type": "text", "text": "Attached `df` (pandas DataFrame):\n…"}, {"type": "text", "text": "What is in df?"}],
            answer=[{"type": "text", "text": "## Columns\n\n| a | b |\n|---|---|\n| 1 | 2 |"}],
        )
    )

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        panel.start()
        await panel._models_task  # type: ignore[misc]
        return panel

    panel = run(scenario)
    assert "claude-haiku-5-5" in panel.model.options and panel.model.value == magics.model
    question, answer = panel.messages.children
    assert "What is in df?" in text_of(question) and "attached: <code>df</code>" in text_of(question)
    assert "<h2>Columns</h2>" in text_of(answer) and "<td>1</td>" in text_of(answer)
    assert text_of(panel.status) == "1 earlier exchange of this notebook&#x27;s conversation is above"


def test_without_a_model_list_the_default_stays_and_the_status_says_why(magics: ClaudeMagics) -> None:
    magics.base_url, magics.max_retries = "http://127.0.0.1:9", 0

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        await panel.load_models()
        return panel

    panel = run(scenario)
    assert panel.model.options == (magics.model,)
    assert "the model list is unavailable" in text_of(panel.status) and "127.0.0.1:9" in text_of(panel.status)
    assert "claude-chat-error" in panel.status._dom_classes


def test_a_question_streams_and_joins_the_conversation_the_magic_sends(magics: ClaudeMagics, shared_stand_in: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        panel.question.value = "Explain joins [[markdown]]"
        panel.question._handle_custom_msg({"event": "submit"}, [])  # Enter, as the frontend sends it
        assert panel.busy and panel.send.disabled and not panel.stop.disabled
        await panel._task  # type: ignore[misc]
        return panel

    panel = run(scenario)
    assert not panel.busy and not panel.send.disabled and panel.stop.disabled
    assert panel.question.value == ""
    user, answer = panel.messages.children
    assert "Explain joins [[markdown]]" in text_of(user)
    assert "<h2>Left join vs inner join</h2>" in text_of(answer) and "mjx" not in text_of(answer)
    assert "out tokens" in text_of(panel.status) and "claude-chat-error" not in panel.status._dom_classes
    exchange = magics.session.conversation.exchanges[-1]
    assert exchange.question[-1]["text"] == "Explain joins [[markdown]]" and exchange.complete

    magics.shell.run_cell("%claude And in one sentence?")
    assert shared_stand_in.message_requests[-1].prompts() == ["Explain joins [[markdown]]", "And in one sentence?"]
    assert "Stand-in answer" in capsys.readouterr().out


def test_the_panel_asks_through_the_engine_with_tools_thinking_and_the_answer_cache(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    def area(w: int, h: int) -> int:
        """The area of a rectangle."""
        return w * h

    magics.shell.user_ns["area"] = area
    shared_stand_in.tool_calls.append(("area", {"w": 2, "h": 3}))

    async def ask(panel: ChatPanel, question: str) -> None:
        task = panel.ask(question)
        assert task is not None
        await task

    shown: list[str] = []

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        await panel._models_task if panel._models_task else None
        panel.think.value, panel.tools.value = True, "area"
        await ask(panel, "How big is it?")
        shown.extend(text_of(child) for child in panel.messages.children)
        magics.cache = True
        panel.think.value, panel.tools.value = False, ""
        for _ in range(2):  # the same request twice: the second from the answer cache
            panel.new_conversation()
            await ask(panel, "Once, please")
        return panel

    panel = run(scenario)
    first, second = shared_stand_in.message_requests[:2]
    assert first.body["thinking"] == {"type": "adaptive"} and [t["name"] for t in first.body["tools"]] == ["area"]
    assert second.messages[-1]["content"] == [{"type": "tool_result", "tool_use_id": second.messages[-2]["content"][-1]["id"], "content": "6"}]
    assert any("🔧 area(w=2, h=3) → result" in text and "<pre>6</pre>" in text for text in shown)
    assert any("use the tool <code>area</code>." in text for text in shown), shown  # the tool round's text, whole
    assert len(shared_stand_in.message_requests) == 3  # the repeated question cost nothing
    assert "from the answer cache" in text_of(panel.status)


def test_in_vscode_a_price_is_plain_and_blank_widget_releases_are_named(magics: ClaudeMagics, shared_stand_in: StandIn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ipywidgets.__version__", "8.1.9")
    kernel = dataclasses.replace(magics.kernel_side(), in_vscode=True)

    async def scenario() -> ChatPanel:
        panel = open_panel(magics.session, magics.panel_settings, kernel)
        task = panel.ask("Prices please [[markdown]]")
        assert task is not None
        await task
        return panel

    panel = run(scenario)
    answer = text_of(panel.messages.children[-1])
    assert "A coffee costs $5 and a sandwich $10." in answer and "\\$" not in answer  # nothing typesets widget math there
    warning = capsys.readouterr().err
    assert "VS Code shows nothing of ipywidgets 8.1.9 (vscode-jupyter #17504)" in warning


def test_redraws_are_throttled_and_the_end_is_drawn_whole(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    draws: list[str] = []

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        original = panel._open_answer

        def counting(settings: PanelSettings) -> PanelAnswer:
            renderer = original(settings)
            renderer.message.observe(lambda change: draws.append(change["new"]), "value")
            return renderer

        panel._open_answer = counting  # type: ignore[method-assign]
        task = panel.ask("Go on [[words=3000]]")
        assert task is not None
        await task
        return panel

    panel = run(scenario)
    deltas = 1500
    assert len(draws) < deltas / 50, f"{len(draws)} redraws for {deltas} deltas"
    assert draws[-1] == text_of(panel.messages.children[-1])
    assert (shared_stand_in.message_requests[-1].answer or "").split()[-1].strip("_()") in draws[-1]


def test_stop_cancels_at_once_and_the_partial_answer_stays_everywhere(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    shared_stand_in.fail(delay=0.02)

    async def scenario() -> tuple[ChatPanel, float]:
        panel = panel_of(magics)
        task = panel.ask("A long story [[words=1000]]")
        assert task is not None
        while "stream tokens" not in text_of(panel.messages.children[-1]):
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        clicked = loop.time()
        panel.stop.click()
        await task
        return panel, loop.time() - clicked

    panel, took = run(scenario)
    assert took < 0.5
    assert text_of(panel.status).startswith("stopped; the partial answer above is kept")
    assert "claude-chat-error" in panel.status._dom_classes
    exchange = magics.session.conversation.exchanges[-1]
    assert not exchange.complete
    kept = exchange.answer[0]["text"]
    assert 0 < len(kept) < len(shared_stand_in.message_requests[-1].answer or "")
    assert kept.split()[0] in text_of(panel.messages.children[-1])
    assert len(panel.messages.children) == 2  # the recorded exchange, shown once


def test_an_error_before_the_answer_is_one_line_and_gives_the_question_back(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    shared_stand_in.fail(status=400, message="messages: refused by the stand-in")

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        panel.question.value = "Will this be refused?"
        panel.send.click()
        await panel._task  # type: ignore[misc]
        return panel

    panel = run(scenario)
    assert text_of(panel.status) == "the API refused the request (400 messages: refused by the stand-in) [request-id req_standin_" + text_of(panel.status).split("req_standin_")[1]
    assert panel.question.value == "Will this be refused?"
    assert len(magics.session.conversation) == 0
    assert [type(m).__name__ for m in panel.messages.children] == ["HTML"]  # the question, no empty answer


def test_an_error_mid_answer_keeps_the_partial_text(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    shared_stand_in.fail(error_after=6)

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        await panel.ask("Break off [[markdown]]")  # type: ignore[misc]
        return panel

    panel = run(scenario)
    assert "cut off by an error" in text_of(panel.status) and "incomplete" in text_of(panel.status)
    assert "<h2>Left join vs inner join</h2>" in text_of(panel.messages.children[-1])
    assert not magics.session.conversation.exchanges[-1].complete


def test_the_picker_lists_frames_and_pictures_and_attaches_what_is_picked(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    namespace = magics.shell.user_ns
    namespace.update(sales=pd.DataFrame({"month": ["Jan", "Feb"], "revenue": [1.5, 2.5]}), figure=plt.figure(), note="text", _hidden=pd.DataFrame())
    for run_number, count in ((1, 1), (3, 3), (3, 3), (12, 12)):
        magics.notebook.images.append(DisplayedImage(run=run_number, execution_count=count, media_type="image/png", data=png()))

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        labels = [label for label, _ in panel.attachments.options]
        assert labels == [
            "figure · matplotlib Figure",
            "sales · pandas DataFrame 2×2",
            "plot displayed by cell [12]",
            "plot displayed by cell [3]",
            "plot displayed by cell [3] (2)",
            "plot displayed by cell [1]",
        ]
        panel.attachments.value = (panel.attachments.options[1][1], panel.attachments.options[3][1])
        await panel.ask("Compare them")  # type: ignore[misc]
        return panel

    panel = run(scenario)
    blocks = shared_stand_in.message_requests[-1].messages[-1]["content"]
    assert blocks[0]["text"].startswith("Attached `sales` (pandas DataFrame):") and "revenue" in blocks[0]["text"]
    assert blocks[1]["text"].startswith("Attached image displayed by cell [3] (plot, 24×16 px)")
    assert blocks[2]["type"] == "image" and blocks[3] == {"type": "text", "text": "Compare them"}
    assert "attached: <code>sales</code>, <code>displayed by cell [3]</code>" in text_of(panel.messages.children[0])
    assert panel.attachments.value == ()
    plt.close("all")


def test_a_picked_variable_that_is_gone_sends_nothing_and_refresh_updates_the_list(magics: ClaudeMagics, shared_stand_in: StandIn) -> None:
    import pandas as pd

    magics.shell.user_ns["df"] = pd.DataFrame({"a": [1]})

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        panel.attachments.value = ("df",)
        del magics.shell.user_ns["df"]
        assert panel.ask("What is in df?") is None
        assert text_of(panel.status) == "df is gone from the kernel; refresh the list (↻)"
        magics.shell.user_ns["later"] = pd.DataFrame({"b": [1, 2]})
        panel.refresh.click()
        assert [value for _, value in panel.attachments.options] == ["later"]
        return panel

    run(scenario)
    assert shared_stand_in.message_requests == []


def test_new_conversation_forgets_for_the_panel_and_the_cells(magics: ClaudeMagics) -> None:
    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        await panel.ask("First")  # type: ignore[misc]
        slow = panel.ask("Second [[delay=0.05]]")
        assert panel.ask("Third") is None and "on its way" in text_of(panel.status)
        panel.new.click()  # refused while an answer streams
        assert "stop the answer first" in text_of(panel.status)
        await slow  # type: ignore[misc]
        panel.new.click()
        return panel

    panel = run(scenario)
    assert len(magics.session.conversation) == 0 and panel.messages.children == ()
    assert text_of(panel.status).startswith("new conversation")


def test_a_cell_that_reruns_replaces_its_exchange_in_the_panel_too(magics: ClaudeMagics) -> None:
    from claude_magic.core.conversation import CellRun

    def from_cell(run_number: int, text: str) -> None:
        magics.session.conversation.record(
            Exchange([{"type": "text", "text": text}], [{"type": "text", "text": f"answer to {text}"}], cell=CellRun("cell-a", run_number, run_number))
        )

    async def scenario() -> None:
        from_cell(1, "first version")
        panel = panel_of(magics)
        shown = panel.messages.children
        panel.refresh.click()
        assert panel.messages.children == shown  # nothing changed: the same widgets
        from_cell(2, "second version")
        panel.refresh.click()
        assert "second version" in text_of(panel.messages.children[0]) and len(panel.messages.children) == 2

    run(scenario)


def test_chat_needs_a_notebook_and_takes_only_side(magics: ClaudeMagics) -> None:
    with pytest.raises(ClaudeMagicError, match="the chat panel needs a notebook"):
        magics.claude("chat")
    with pytest.raises(UsageError, match="%claude chat takes only --side"):
        magics.claude("chat --left")


def test_side_without_sidecar_says_so_and_shows_the_panel_under_the_cell(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    import ipywidgets

    if importlib.util.find_spec("sidecar") is not None:
        pytest.skip("sidecar is installed here: --side uses it")
    _display(ipywidgets.HTML("panel"), side=True)
    captured = capsys.readouterr()
    assert "--side needs the sidecar package (pip install sidecar)" in captured.err
    assert "HTML(value='panel'" in captured.out


def test_a_long_history_keeps_its_earlier_messages_in_one_box(magics: ClaudeMagics) -> None:
    """The browser lays that box out once, not again on each update of the answer (which
    tests/test_browser.py measures); the newest messages stay where they were, at the end."""
    from claude_magic.core.conversation import CellRun
    from claude_magic.ui.panel import RECENT_MESSAGES

    def asked(n: int) -> None:
        magics.session.conversation.record(Exchange([{"type": "text", "text": f"question {n}"}], [{"type": "text", "text": f"answer {n}"}], CellRun()))

    async def scenario() -> None:
        for n in range(30):
            asked(n)
        panel = panel_of(magics)
        earlier, *recent = panel.messages.children
        assert earlier is panel.earlier and len(earlier.children) == 60 - RECENT_MESSAGES and len(recent) == RECENT_MESSAGES
        assert "question 20" in text_of(recent[0]) and "answer 29" in text_of(recent[-1])
        kept = recent[-2:]
        asked(30)
        panel.refresh.click()
        assert list(panel.earlier.children[-2:]) == list(recent[:2]) and list(panel.messages.children[-4:-2]) == kept  # the same widgets

    run(scenario)


def test_vscode_is_recognised_by_what_it_really_sets(magics: ClaudeMagics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING", raising=False)
    assert not magics.in_vscode
    monkeypatch.setenv("PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING", "1")  # vscode-jupyter's kernels (kernelEnvVarsService)
    assert magics.in_vscode
    monkeypatch.setenv("JPY_SESSION_NAME", "/work/a.ipynb")  # a Jupyter server's kernel, maybe being debugged
    assert not magics.in_vscode
    magics.shell.user_ns["__vsc_ipynb_file__"] = "/work/a.ipynb"  # VS Code names the notebook, remote servers too
    assert magics.in_vscode


def test_a_document_picked_with_cite_and_a_web_search_show_their_sources(magics: ClaudeMagics, shared_stand_in: StandIn, tmp_path: Any) -> None:
    from pathlib import Path

    from claude_magic.testing.pdf import write_pdf

    report = tmp_path / "report.pdf"
    report.write_bytes(write_pdf(["Revenue grew 12% in March.", "Staff costs fell by 3% over the quarter."]))
    magics.shell.user_ns["report"] = Path(report)

    async def scenario() -> ChatPanel:
        panel = panel_of(magics)
        assert ("report · PDF file report.pdf", "report") in panel.attachments.options
        panel.attachments.value, panel.cite.value = ("report",), True
        await panel.ask("What happened to staff costs?")  # type: ignore[misc]
        panel.web.value = True
        await panel.ask("And the weather in Oslo?")  # type: ignore[misc]
        return panel

    panel = run(scenario)
    first, second = shared_stand_in.message_requests
    assert first.messages[-1]["content"][1]["citations"] == {"enabled": True} and "tools" not in first.body
    assert [t["name"] for t in second.body["tools"]] == ["web_search", "web_fetch"]
    shown = [text_of(child) for child in panel.messages.children]
    assert "Staff costs fell by 3% over the quarter.<sup>1</sup>" in shown[1]
    assert "<li><b>report.pdf</b> · page 2 · “Staff costs fell by 3% over the quarter.”</li>" in shown[1]
    assert any(text.startswith("<details><summary>🔎 web search: “And the weather in Oslo?” → 3 results</summary>") for text in shown)
    assert '<a href="https://example.org/and-the-weather-in-oslo/1" target="_blank" rel="noopener noreferrer">' in shown[-1]
    reopened = [text_of(child) for child in panel_of(magics).messages.children]  # past exchanges keep their sources
    assert "<li><b>report.pdf</b> · page 2 · “Staff costs fell by 3% over the quarter.”</li>" in reopened[1]
