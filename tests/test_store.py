"""The per-notebook log: events round-trip, images are stored once, a torn last line loses
nothing before it, concurrent writers never interleave, credentials never reach the disk."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from claude_magic.api.redaction import remember
from claude_magic.core.conversation import CellRun, Conversation, Exchange, notebook_path
from claude_magic.core.store import ConversationStore, log_name

NOTEBOOK = "/home/user/analysis/sales report.ipynb"
KEY = "sk-ant-store-test-key-1234567890abcdef"


def png(colour: str, size: tuple[int, int] = (40, 30)) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def image_block(data: str) -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def exchange(question: str, cell: CellRun | None = None, *, images: tuple[str, ...] = (), answer: str = "an answer") -> Exchange:
    blocks = [image_block(i) for i in images] + [{"type": "text", "text": question}]
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100}
    return Exchange(blocks, [{"type": "text", "text": answer}], cell or CellRun(), "claude-sonnet-5-5", usage)


def questions(conversation: Conversation) -> list[str]:
    return [e.question[-1]["text"] for e in conversation.exchanges]


def lines(store: ConversationStore) -> list[dict]:
    return [json.loads(line) for line in store.path.read_text().splitlines()]


def test_a_conversation_comes_back_as_it_was_recorded(tmp_path: Path) -> None:
    first = Conversation.open(NOTEBOOK, tmp_path)
    first.record(exchange("one", CellRun("a", 1, 1), images=(png("red"),)))
    first.record(exchange("two", CellRun("b", 2, 2)))
    again = Conversation.open(NOTEBOOK, tmp_path)
    assert [e.question for e in again.exchanges] == [e.question for e in first.exchanges]
    assert [(e.cell, e.model, e.usage, e.complete) for e in again.exchanges] == [(e.cell, e.model, e.usage, e.complete) for e in first.exchanges]
    assert again.messages() == first.messages()


def test_a_rerun_cell_forks_the_conversation_in_the_log_too(tmp_path: Path) -> None:
    live = Conversation.open(NOTEBOOK, tmp_path)
    live.record(exchange("z", CellRun("z", 1, 1)))
    live.record(exchange("a, first run", CellRun("a", 2, 2)))
    live.record(exchange("b", CellRun("b", 3, 3)))
    live.record(exchange("a, second run", CellRun("a", 4, 4)))
    live.record(exchange("a, same run", CellRun("a", 4, 4)))
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == questions(live) == ["z", "a, second run", "a, same run"]
    restored = Conversation.open(NOTEBOOK, tmp_path)
    assert [s.exchange.question[-1]["text"] for s in restored.set_aside] == ["a, first run", "b"]
    restored.record(exchange("z after a restart", CellRun("z", 1, 1)))  # a new kernel's first run of z forks at z
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == ["z after a restart"]


def test_images_are_stored_once_by_content_and_never_inline(tmp_path: Path) -> None:
    red, blue = png("red"), png("blue", (64, 64))
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    conversation.record(exchange("one", images=(red,)))
    conversation.record(exchange("two", images=(red, blue)))
    stored = sorted((tmp_path / "images").iterdir())
    assert len(stored) == 2 and {p.suffix for p in stored} == {".png"}
    assert {p.read_bytes() for p in stored} == {base64.b64decode(red), base64.b64decode(blue)}
    log = conversation.store.path.read_text()
    assert red not in log and blue not in log and '"type":"stored"' in log
    back = Conversation.open(NOTEBOOK, tmp_path).exchanges[1].question
    assert [b["source"]["data"] for b in back[:2]] == [red, blue]


def test_an_image_gone_from_the_store_becomes_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Conversation.open(NOTEBOOK, tmp_path).record(exchange("look", images=(png("green"),)))
    for file in (tmp_path / "images").iterdir():
        file.unlink()
    restored = Conversation.open(NOTEBOOK, tmp_path)
    assert restored.exchanges[0].question[0]["type"] == "text" and "no longer" in restored.exchanges[0].question[0]["text"]
    assert "missing" in capsys.readouterr().err


def test_a_torn_last_line_is_skipped_with_a_warning_and_nothing_before_it_is_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    for text in ("one", "two", "three"):
        conversation.record(exchange(text))
    path = conversation.store.path
    whole = path.read_bytes()
    torn = lines(conversation.store)[-1] | {"question": [{"type": "text", "text": "four"}]}
    path.write_bytes(whole + json.dumps(torn).encode()[:-40])  # a crash mid-write: no end, no newline
    restored = Conversation.open(NOTEBOOK, tmp_path)
    assert questions(restored) == ["one", "two", "three"]
    assert "incomplete" in capsys.readouterr().err
    restored.record(exchange("five"))  # the next append cuts the torn tail off first
    assert path.read_bytes().startswith(whole)
    assert [e.get("question", [{}])[-1].get("text") for e in lines(restored.store)][1:] == ["one", "two", "three", "five"]
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == ["one", "two", "three", "five"]
    assert capsys.readouterr().err == ""


def test_a_damaged_line_in_the_middle_is_skipped_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    for text in ("one", "two", "three"):
        conversation.record(exchange(text))
    rows = conversation.store.path.read_text().splitlines(keepends=True)
    rows[2] = "{not json\n"
    conversation.store.path.write_text("".join(rows))
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == ["one", "three"]
    assert "line 3 is damaged" in capsys.readouterr().err


def test_problems_go_to_the_notice_its_owner_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    for text in ("one", "two"):
        conversation.record(exchange(text))
    conversation.store.path.write_text(conversation.store.path.read_text() + "{not json\n")
    notices: list[str] = []
    assert questions(Conversation.open(NOTEBOOK, tmp_path, notice=notices.append)) == ["one", "two"]
    assert notices == [f"{conversation.store.path}: line 4 is damaged; skipped it"] and capsys.readouterr().err == ""


def test_reset_archives_the_log_and_a_new_one_starts(tmp_path: Path) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    conversation.record(exchange("before"))
    archived = conversation.clear().archived
    assert archived is not None and archived.parent == tmp_path / "archive" and not conversation.store.path.exists()
    assert "before" in archived.read_text()
    conversation.record(exchange("after"))
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == ["after"]
    assert conversation.store.archived() == [archived]
    assert [e["event"] for e in conversation.store.every_event()] == ["start", "exchange", "start", "exchange"]
    assert conversation.clear().archived is not None and Conversation.open(NOTEBOOK, tmp_path).clear().archived is None


def test_credentials_are_redacted_from_every_line(tmp_path: Path) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    remember(["a-custom-token-not-shaped-like-a-key"])
    conversation.record(exchange(f"my key is {KEY} and my token a-custom-token-not-shaped-like-a-key"))
    text = conversation.store.path.read_text()
    assert KEY not in text and "a-custom-token" not in text and "sk-ant-***" in text


def test_files_are_private_to_the_user(tmp_path: Path) -> None:
    conversation = Conversation.open(NOTEBOOK, tmp_path)
    conversation.record(exchange("private", images=(png("red"),)))
    assert conversation.store.path.stat().st_mode & 0o077 == 0
    assert (tmp_path / "conversations").stat().st_mode & 0o077 == 0


def test_without_a_notebook_nothing_is_written(tmp_path: Path) -> None:
    conversation = Conversation.open(None, tmp_path)
    conversation.record(exchange("aside"))
    assert conversation.store is None and list(tmp_path.iterdir()) == []


def test_which_notebook() -> None:
    assert notebook_path({"JPY_SESSION_NAME": "/a/b.ipynb"}, {"__vsc_ipynb_file__": "/c/d.ipynb"}) == "/a/b.ipynb"
    assert notebook_path({}, {"__vsc_ipynb_file__": "/c/d.ipynb"}) == "/c/d.ipynb"
    assert notebook_path({"JPY_SESSION_NAME": ""}, {}) is None
    assert log_name(NOTEBOOK).startswith("sales_report-") and log_name(NOTEBOOK) != log_name("/elsewhere/sales report.ipynb")


# --- two writers at once ------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from claude_magic.core.store import ConversationStore

    store = ConversationStore(sys.argv[1], Path(sys.argv[2]))
    payload = sys.argv[3] * 300_000  # far more than one write() of a pipe or a page: tears show
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[4])):
        store.append({"event": "usage", "writer": sys.argv[3], "n": n, "payload": payload})
    """
)


def test_two_processes_appending_at_once_never_corrupt_a_line(tmp_path: Path) -> None:
    per_writer = 15
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, NOTEBOOK, str(tmp_path), letter, str(per_writer)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for letter in "ab"
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:  # release both together
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    store = ConversationStore(NOTEBOOK, tmp_path)
    events = [json.loads(line) for line in store.path.read_text().splitlines()]  # every line parses
    assert [e["event"] for e in events].count("start") == 1
    written = [(e["writer"], e["n"]) for e in events if e["event"] == "usage"]
    assert sorted(written) == sorted((w, n) for w in "ab" for n in range(per_writer))
    assert all(e["payload"] == e["writer"] * 300_000 for e in events if e["event"] == "usage")


def test_a_writer_waits_while_another_holds_the_lock(tmp_path: Path) -> None:
    store = ConversationStore(NOTEBOOK, tmp_path)
    script = f"{WRITER}\nprint('done', flush=True)"
    with store.locked():
        writer = subprocess.Popen([sys.executable, "-c", script, NOTEBOOK, str(tmp_path), "c", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert writer.stdout.readline().strip() == "ready"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        time.sleep(1.0)
        assert writer.poll() is None and not store.path.exists()  # blocked on our lock
    assert writer.stdout.readline().strip() == "done" and writer.wait(timeout=30) == 0
    assert [e["event"] for e in lines(store)] == ["start", "usage"]


def test_a_restored_exchange_is_restored_for_every_reader_of_the_log(tmp_path: Path) -> None:
    live = Conversation.open(NOTEBOOK, tmp_path)
    live.record(exchange("a", CellRun("a", 1, 1)))
    live.record(exchange("b", CellRun("b", 2, 2)))
    live.record(exchange("a again", CellRun("a", 3, 3)))
    live.restore(2)
    restored = Conversation.open(NOTEBOOK, tmp_path)
    assert questions(restored) == questions(live) == ["a again", "b"]
    assert [s.exchange.question[-1]["text"] for s in restored.set_aside] == ["a"]


# --- a notebook that moves takes its conversation along ---------------------------------------

MOVED = "/home/user/analysis/final report.ipynb"


def test_a_moved_notebooks_conversation_follows_it_and_its_kernels_follow_too(tmp_path: Path) -> None:
    from claude_magic.core.store import kept_notebooks, move_conversation

    running = Conversation.open(NOTEBOOK, tmp_path)  # a kernel on the notebook, before and after the move
    running.record(exchange("first", CellRun("a", 1, 1)))
    running.clear()
    running.record(exchange("second", CellRun("b", 2, 2)))
    old = ConversationStore(NOTEBOOK, tmp_path)

    moved = move_conversation(NOTEBOOK, MOVED, tmp_path)

    new = ConversationStore(MOVED, tmp_path)
    assert moved == new.path and not old.path.exists() and old.archived() == []
    assert len(new.archived()) == 1 and "first" in new.archived()[0].read_text()  # the archives went along
    assert lines(new)[-1]["event"] == "moved" and lines(new)[-1]["notebook"] == MOVED
    running.record(exchange("third", CellRun("c", 3, 3)))  # the kernel still named the old path
    assert running.store is not None and running.store.notebook == MOVED
    assert not old.path.exists(), "the kernel started a new log under the old name"
    assert questions(Conversation.open(MOVED, tmp_path)) == ["second", "third"]
    assert kept_notebooks(tmp_path) == [MOVED]

    fresh = Conversation.open(NOTEBOOK, tmp_path)  # a new notebook under the old name starts anew
    assert questions(fresh) == []
    fresh.record(exchange("unrelated", CellRun("d", 1, 1)))
    assert questions(Conversation.open(MOVED, tmp_path)) == ["second", "third"]
    assert sorted(kept_notebooks(tmp_path)) == sorted([NOTEBOOK, MOVED])


def test_moving_onto_a_kept_conversation_archives_that_one_and_a_notebook_without_one_moves_nothing(tmp_path: Path) -> None:
    from claude_magic.core.store import move_conversation

    Conversation.open(NOTEBOOK, tmp_path).record(exchange("mine"))
    Conversation.open(MOVED, tmp_path).record(exchange("stale, from a notebook deleted outside Jupyter"))
    move_conversation(NOTEBOOK, MOVED, tmp_path)
    assert questions(Conversation.open(MOVED, tmp_path)) == ["mine"]
    assert "stale" in ConversationStore(MOVED, tmp_path).archived()[0].read_text()

    assert move_conversation("/nowhere/never.ipynb", "/nowhere/else.ipynb", tmp_path) is None
    assert not list((tmp_path / "conversations").glob(f"{log_name('/nowhere/never.ipynb')}*"))  # no lock file either
