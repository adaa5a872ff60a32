"""One durable conversation per notebook, in real kernels against the stand-in: restored after a
restart, replacements remembered, a torn log survived, the key never written, reset, export,
history, usage, the context budget and prompt caching as the user sees them."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment
from nbclient import NotebookClient

from claude_magic.core.budget import IMAGE_LEFT_OUT
from claude_magic.core.conversation import Conversation
from claude_magic.magics.export import read_json
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-persistence-test-key-7c4e9a1b2d"


@pytest.fixture(autouse=True)
def quiet(server: StandIn) -> None:
    server.reset()


def environment(server: StandIn, home: Path, notebook: str | None) -> dict[str, str | None]:
    return stand_in_environment(server.base_url, KEY, home, notebook)


def kernel(server: StandIn, home: Path, notebook: str | None = "/work/analysis.ipynb") -> Kernel:
    return Kernel.with_magic(environment(server, home, notebook))


def plain(result: CellResult) -> str:
    return "\n".join(o["data"].get("text/plain", "") for o in result.displays())


# --- across restarts ------------------------------------------------------------------------------


def test_a_new_kernel_continues_the_notebooks_conversation(server: StandIn, tmp_path: Path) -> None:
    """As nbclient runs it: ask, shut the kernel down, a new kernel for the same notebook asks again."""
    cells = ["%load_ext claude_magic", "%claude What is a left join?", "%claude And an inner join?", "%claude history"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    env = {k: v for k, v in environment(server, tmp_path / "home", str(tmp_path / "joins.ipynb")).items() if v is not None}

    def run(indices: list[int]) -> None:
        client = NotebookClient(notebook, timeout=60, kernel_name="python3")
        with client.setup_kernel(env=env):  # the kernel is shut down when the block ends
            for index in indices:
                client.execute_cell(notebook.cells[index], index)

    run([0, 1])
    assert server.message_requests[-1].prompts() == ["What is a left join?"]
    run([0, 2, 3])
    assert server.message_requests[-1].prompts() == ["What is a left join?", "And an inner join?"]
    shown = notebook.cells[3].outputs[0]["data"]["text/plain"]
    assert "2 turns" in shown and str(tmp_path / "joins.ipynb") in shown
    assert "What is a left join?" in shown and "And an inner join?" in shown


def test_a_rerun_after_a_restart_forks_the_conversation_and_the_log_remembers(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as first:
        first.ok("%claude Alpha", cell_id="A")
        first.ok("%claude Beta", cell_id="B")
    with kernel(server, tmp_path) as second:
        second.ok("%claude Alpha, edited", cell_id="A")
        assert server.message_requests[-1].prompts() == ["Alpha, edited"]  # B came after A: set aside
        history = plain(second.ok("%claude history --all"))
        assert re.search(r"\[\d+\] A\b.*Alpha, edited", history) and "1 turn, 2 set aside" in history
        assert re.search(r"set aside 2 .*Beta.*when \[\d+\] A ran again", history)
        assert "Beta" not in plain(second.ok("%claude history"))
        assert "is the conversation's latest again" in second.ok("%claude restore 2").stdout
        second.ok("%claude Gamma", cell_id="C")
        assert server.message_requests[-1].prompts() == ["Alpha, edited", "Beta", "Gamma"]
    kept = Conversation.open("/work/analysis.ipynb", tmp_path)
    assert [e.question[-1]["text"] for e in kept.exchanges] == ["Alpha, edited", "Beta", "Gamma"]
    assert [s.exchange.question[-1]["text"] for s in kept.set_aside] == ["Alpha"]


def test_run_all_sends_what_it_sent_before(server: StandIn, tmp_path: Path) -> None:
    """Restart & Run All (a new kernel, each cell sent with its id as JupyterLab does) twice
    sends byte-identical requests; after editing the third cell, Run All sends cells 1 and 2
    with the history they had, and cell 3 without what came after it."""
    cells = {"c1": "What is a left join?", "c2": "And an inner join?", "c3": "Which is faster?", "c4": "Summarise."}

    def run_all() -> list[tuple[list[str], str]]:
        server.reset()
        with kernel(server, tmp_path) as k:
            for cell_id, question in cells.items():
                k.ok(f"%claude {question}", cell_id=cell_id)
        return [(r.prompts(), r.digest) for r in server.message_requests]

    first, second = run_all(), run_all()
    questions = list(cells.values())
    assert [prompts for prompts, _ in first] == [questions[: n + 1] for n in range(4)]
    assert second == first  # the same bytes, not only the same questions
    cells["c3"] = "Which is faster, in a sentence?"
    edited = run_all()
    assert edited[:2] == first[:2]
    assert [prompts for prompts, _ in edited[2:]] == [[*questions[:2], cells["c3"]], [*questions[:2], cells["c3"], "Summarise."]]


def test_vs_code_names_the_notebook_in_the_namespace(server: StandIn, tmp_path: Path) -> None:
    for question in ("First, in VS Code", "Second, in VS Code"):
        with kernel(server, tmp_path, notebook=None) as k:
            k.ok("__vsc_ipynb_file__ = '/projects/vscode.ipynb'")
            k.ok(f"%claude {question}")
    assert server.message_requests[-1].prompts() == ["First, in VS Code", "Second, in VS Code"]


def test_without_a_notebook_the_conversation_is_for_the_session_only(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path, notebook=None) as k:
        k.ok("%claude Hello")
        assert "for this session only" in plain(k.ok("%claude history"))
        assert "lived for this session only" in k.ok("%claude reset").stdout
        assert "session only" in plain(k.ok("%claude usage"))
    assert not tmp_path.exists() or not any(tmp_path.rglob("*"))


def test_a_torn_last_line_loses_nothing_before_it(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as k:
        k.ok("%claude One")
        k.ok("%claude Two")
    [log] = (tmp_path / "conversations").glob("*.jsonl")
    log.write_bytes(log.read_bytes() + b'{"event":"exchange","question":[{"type":"text","te')  # the kernel died mid-write
    with kernel(server, tmp_path) as k:
        shown = k.ok("%claude history")
        assert "2 turns" in plain(shown) and "incomplete" in shown.stderr
        k.ok("%claude Three")
    assert server.message_requests[-1].prompts() == ["One", "Two", "Three"]
    assert all(json.loads(line) for line in log.read_text().splitlines())


def test_two_kernels_on_one_notebook_keep_one_conversation(server: StandIn, tmp_path: Path) -> None:
    """Each kernel's request carries what the other recorded, a re-run cell replaces its exchange
    whichever kernel ran it before, and a restart restores what both kernels had."""
    with kernel(server, tmp_path) as a, kernel(server, tmp_path) as b:
        b.ok("%claude B1", cell_id="b1")
        a.ok("%claude A1", cell_id="a1")
        b.ok("%claude B2", cell_id="b2")
        assert server.message_requests[-1].prompts() == ["B1", "A1", "B2"]
        a.ok("%claude X, from A", cell_id="x")
        b.ok("%claude X, from B", cell_id="x")  # the same cell, run again in the other kernel
        assert server.message_requests[-1].prompts() == ["B1", "A1", "B2", "X, from B"]
        a.ok("%claude A2", cell_id="a2")
        assert server.message_requests[-1].prompts() == ["B1", "A1", "B2", "X, from B", "A2"]
        assert "5 turns" in plain(b.ok("%claude history"))
    with kernel(server, tmp_path) as restarted:
        restarted.ok("%claude C1")
        assert server.message_requests[-1].prompts() == ["B1", "A1", "B2", "X, from B", "A2", "C1"]


def test_an_unreadable_log_is_named_in_history_and_usage(server: StandIn, tmp_path: Path) -> None:
    from claude_magic.core.store import ConversationStore

    log = ConversationStore("/work/analysis.ipynb", tmp_path).path
    log.mkdir(parents=True)  # a folder where the log should be: it can't be read, even by root
    with kernel(server, tmp_path) as k:
        shown = k.ok("%claude history")
        header = plain(shown).splitlines()[0]
        assert "JPY_SESSION_NAME" not in header
        assert f"this conversation lives for this session only: the notebook's log {log} could not be read" in header
        assert f"{log} could not be read (Is a directory)" in shown.stderr
        k.ok("%claude Hello")
        usage = plain(k.ok("%claude usage"))
        assert f"{log} could not be read" in usage and "JPY_SESSION_NAME" not in usage
    assert log.is_dir() and not list(log.iterdir())  # left as it was


def test_reset_archives_and_usage_counts_the_session_and_the_notebook(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as k:
        k.ok("%claude Before")
        k.ok("%claude --no-history An aside")
        said = k.ok("%claude reset").stdout
        assert "previous one (1 turn) is archived in" in said
        k.ok("%claude After")
        assert server.message_requests[-1].prompts() == ["After"]
        assert usage_rows(k.ok("%claude usage")) == {"this session": 3, "this notebook": 3}
    [archived] = (tmp_path / "archive").glob("*.jsonl")
    assert "Before" in archived.read_text() and "After" not in archived.read_text()
    with kernel(server, tmp_path) as k:
        k.ok("%claude Later")
        assert server.message_requests[-1].prompts() == ["After", "Later"]
        assert usage_rows(k.ok("%claude usage")) == {"this session": 1, "this notebook": 4}


def usage_rows(result: CellResult) -> dict[str, int]:
    """Requests per row of the usage table."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(this session|this notebook)\s+(\d+)", plain(result), re.MULTILINE)}


# --- one kernel, one notebook -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def notebook_kernel(server: StandIn, home: Path) -> Iterator[Kernel]:
    with kernel(server, home, notebook="/work/shared.ipynb") as k:
        k.ok("import os\nfrom PIL import Image as PILImage")
        yield k


@pytest.fixture
def fresh(notebook_kernel: Kernel, server: StandIn) -> Kernel:
    """A new conversation, default settings and this session's usage from zero, for each test."""
    notebook_kernel.ok("%claude reset\n%config ClaudeMagics.context_budget = None\n%config ClaudeMagics.prompt_caching = True")
    notebook_kernel.ok("from claude_magic.core.pricing import Tally\nget_ipython().magics_manager.registry['ClaudeMagics'].session.usage = Tally()")
    server.reset()
    return notebook_kernel


def test_history_shows_cell_count_preview_and_tokens(fresh: Kernel, server: StandIn) -> None:
    asked = fresh.ok("%claude What is a p-value, in one long sentence that goes on past the preview?", cell_id="cell-p-value")
    count = asked.reply["execution_count"]
    shown = plain(fresh.ok("%claude history"))
    assert "1 turn ·" in shown and "/work/shared.ipynb" in shown
    row = shown.splitlines()[3]  # the header, a blank line, the column names, then the turns
    assert f"[{count}] cell-p-v" in row and "What is a p-value, in one long" in row and "…" in row
    usage = server.message_requests[-1]
    assert re.search(r"\d[\d,]* in · \d+ out", row)
    markdown = fresh.ok("%claude history").displays()[0]["data"]["text/markdown"]
    assert "| turn | cell | question | tokens |" in markdown
    assert usage.answer


def test_reserved_words_and_how_to_ask_with_them(fresh: Kernel, server: StandIn) -> None:
    for word in ("history", "reset", "usage", "export"):
        result = fresh.run(f"%claude {word} of Rome, briefly")
        assert result.reply["ename"] == "UsageError" and f"%claude -- {word} of Rome, briefly" in result.stderr
    fresh.ok("%claude -- history of Rome")
    assert server.message_requests[-1].prompts() == ["history of Rome"]


def test_export_round_trips_with_images(fresh: Kernel, server: StandIn, tmp_path: Path) -> None:
    fresh.ok("img = PILImage.new('RGB', (320, 200), 'orange')")
    fresh.ok("%claude -a img What colour is this?")
    fresh.ok("%claude And the size?")
    said = fresh.ok(f"%claude export {tmp_path / 'talk.json'}\n%claude export '{tmp_path / 'my talk.md'}'").stdout
    assert said.count("Exported 2 turns") == 2
    exchanges = read_json(tmp_path / "talk.json")
    sent = [m for m in server.message_requests[-1].messages]
    assert [e.question for e in exchanges] == [strip_marks(sent[0]["content"]), strip_marks(sent[2]["content"])]
    assert exchanges[0].answer == strip_marks(sent[1]["content"])
    assert exchanges[1].answer[0]["text"] == server.message_requests[-1].answer
    markdown = (tmp_path / "my talk.md").read_text()
    assert "What colour is this?" in markdown and "And the size?" in markdown and server.message_requests[-1].answer in markdown
    [image] = (tmp_path / "my talk_files").iterdir()
    sent_image = next(b for b in sent[0]["content"] if b["type"] == "image")
    assert image.read_bytes() == base64.b64decode(sent_image["source"]["data"])
    assert f"](my%20talk_files/{image.name})" in markdown


def strip_marks(blocks: list[dict]) -> list[dict]:
    return [{k: v for k, v in b.items() if k != "cache_control"} for b in blocks]


def test_export_mistakes_are_one_line(fresh: Kernel, tmp_path: Path) -> None:
    result = fresh.run(f"%claude export {tmp_path / 'talk.txt'}")
    assert result.error["ename"] == "ClaudeMagicError" and len(result.error["traceback"]) == 1 and ".md or .json" in result.error["evalue"]
    result = fresh.run("%claude export")
    assert result.reply["ename"] == "UsageError" and "takes one PATH" in result.stderr


def test_the_key_is_in_no_persisted_file(fresh: Kernel, home: Path, tmp_path: Path) -> None:
    fresh.ok("%claude A question")
    fresh.ok(f"%config ClaudeMagics.api_key = '{KEY}'")
    fresh.ok("%claude My key is {os.environ['ANTHROPIC_API_KEY']}, is that safe?")  # even when asked to
    fresh.ok("%claude --cached Is {os.environ['ANTHROPIC_API_KEY']} still valid?")  # the answer echoes it
    fresh.ok(f"%claude export {tmp_path / 'talk.json'}\n%claude export {tmp_path / 'talk.md'}\n%claude reset")
    fresh.ok("%config ClaudeMagics.api_key = None")
    files = [p for p in [*home.rglob("*"), *tmp_path.rglob("*")] if p.is_file()]
    assert len(files) >= 4 and any(p.parent.name == "answers" for p in files)
    assert [p for p in files if KEY.encode() in p.read_bytes()] == []


def test_history_shows_no_piece_of_a_key_pasted_into_a_question(fresh: Kernel) -> None:
    fresh.ok("%claude Please check whether this key is still valid: {os.environ['ANTHROPIC_API_KEY']}")
    shown = fresh.ok("%claude history")
    assert "Please check whether this key is still valid:" in plain(shown)
    assert "sk-ant-pers" not in shown.everything()  # the preview's cut falls inside the key


def test_a_small_context_budget_leaves_out_old_images_then_old_turns(fresh: Kernel, server: StandIn) -> None:
    fresh.ok("big = PILImage.new('RGB', (1000, 750), 'navy')\n%config ClaudeMagics.context_budget = 2000")
    footers = [fresh.ok("%claude -a big What is this?").footer]
    footers += [fresh.ok(f"%claude Tell me more, part {n} [[words=150]]").footer for n in range(1, 10)]
    notes = [re.search(r"\d+ earlier .* not sent", f) for f in footers]
    first = next(i for i, note in enumerate(notes) if note)
    assert notes[first].group(0) == "1 earlier image not sent"
    assert any(note and "earlier turns" in note.group(0) for note in notes[first:])
    request = server.message_requests[first]
    assert request.messages[0]["content"][1] == {"type": "text", "text": IMAGE_LEFT_OUT}
    assert "image" not in {b["type"] for m in server.message_requests[-1].messages for b in m["content"]}
    assert "10 turns" in plain(fresh.ok("%claude history"))  # left out of the requests, kept in the conversation


def test_prompt_caching_as_the_footer_and_usage_show_it(fresh: Kernel, server: StandIn) -> None:
    footers = [fresh.ok(f"%claude Question {n} [[words=100]]").footer for n in range(1, 5)]
    assert "cache:" not in footers[0]
    assert all(re.search(r"cache: [1-9][\d,]* read, [\d,]+ written", f) for f in footers[2:])
    assert all("≈ $" in f for f in footers)
    last = server.message_requests[-1].messages
    assert [(i, j) for i, m in enumerate(last) for j, b in enumerate(m["content"]) if "cache_control" in b] == [(len(last) - 2, 0)]
    counts = [[int(n.replace(",", "")) for n in re.search(r"([\d,]+) in .* cache: ([\d,]+) read, ([\d,]+) written", f).groups()] for f in footers[1:]]
    counts.append([int(re.search(r"([\d,]+) in", footers[0]).group(1).replace(",", "")), 0, 0])
    expected = sum(read for _, read, _ in counts) / sum(map(sum, counts))
    usage = plain(fresh.ok("%claude usage"))
    assert f"Cache reads: {expected:.0%} of this session's input tokens" in usage and expected > 0.4
    fresh.ok("%config ClaudeMagics.prompt_caching = False")
    uncached = fresh.ok("%claude One more [[words=100]]").footer
    assert "cache_control" not in json.dumps(server.message_requests[-1].body) and "cache:" not in uncached
