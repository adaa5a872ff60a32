"""One conversation per notebook, however many kernels run it: each kernel picks up what the
others recorded (reading only the log's new bytes), an exchange is replaced only by name, and
replaying the log gives exactly the state every kernel had live."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from claude_magic.core.conversation import CellRun, Conversation, Exchange
from claude_magic.core.store import ConversationStore

NOTEBOOK = "/home/user/shared.ipynb"


def exchange(question: str, cell: CellRun | None = None) -> Exchange:
    return Exchange(
        [{"type": "text", "text": question}], [{"type": "text", "text": f"answer to {question}"}], cell or CellRun()
    )


def questions(conversation: Conversation, cell: CellRun | None = None) -> list[str]:
    return [e.question[-1]["text"] for e in conversation.history(cell)]


def ask(conversation: Conversation, question: str, cell: CellRun | None = None) -> list[str]:
    """As the session does: refresh, build the request (returned: the questions it carries), record."""
    sent = questions(conversation.refresh(), cell)
    conversation.record(exchange(question, cell))
    return sent


def test_a_kernel_picks_up_what_another_one_recorded(tmp_path: Path) -> None:
    a, b = Conversation.open(NOTEBOOK, tmp_path), Conversation.open(NOTEBOOK, tmp_path)
    assert ask(b, "b1") == []
    assert ask(a, "a1") == ["b1"]
    assert ask(b, "b2") == ["b1", "a1"]  # b never re-opened the log: it caught up
    assert ask(a, "a2") == ["b1", "a1", "b2"]
    assert (
        questions(Conversation.open(NOTEBOOK, tmp_path))
        == questions(a)
        == questions(b.refresh())
        == ["b1", "a1", "b2", "a2"]
    )


def test_a_rerun_in_one_kernel_forks_the_conversation_the_other_made(tmp_path: Path) -> None:
    a, b = Conversation.open(NOTEBOOK, tmp_path), Conversation.open(NOTEBOOK, tmp_path)
    ask(a, "w from a", CellRun("W", 1, 1))
    ask(a, "x from a", CellRun("X", 2, 2))
    ask(a, "y from a", CellRun("Y", 3, 3))
    assert ask(b, "x from b", CellRun("X", 1, 1)) == ["w from a"]  # b's run of X sets aside a's X and what followed
    assert ask(a, "z from a", CellRun("Z", 4, 4)) == ["w from a", "x from b"]
    restored = Conversation.open(NOTEBOOK, tmp_path)
    assert questions(restored) == ["w from a", "x from b", "z from a"]
    assert [s.exchange.question[-1]["text"] for s in restored.set_aside] == ["x from a", "y from a"]


def test_an_exchange_a_kernel_never_saw_is_not_replaced_by_it(tmp_path: Path) -> None:
    """Both kernels ask from cell X at once: the second to answer had not seen the first's
    exchange when it asked, so both stay (live, in the other kernel and after a restart)."""
    a, b = Conversation.open(NOTEBOOK, tmp_path), Conversation.open(NOTEBOOK, tmp_path)
    sent_a, sent_b = questions(a.refresh(), CellRun("X", 1, 1)), questions(b.refresh(), CellRun("X", 1, 1))
    a.record(exchange("x from a", CellRun("X", 1, 1)))
    b.record(exchange("x from b", CellRun("X", 1, 1)))
    assert sent_a == sent_b == []
    assert (
        questions(b)
        == questions(a.refresh())
        == questions(Conversation.open(NOTEBOOK, tmp_path))
        == ["x from a", "x from b"]
    )


def test_a_reset_in_one_kernel_starts_over_in_the_others(tmp_path: Path) -> None:
    a, b = Conversation.open(NOTEBOOK, tmp_path), Conversation.open(NOTEBOOK, tmp_path)
    ask(a, "before")
    ask(b, "also before")
    assert a.clear().archived is not None
    assert ask(b, "after, from b") == []
    assert ask(a, "after, from a") == ["after, from b"]
    assert (
        questions(b.refresh()) == questions(Conversation.open(NOTEBOOK, tmp_path)) == ["after, from b", "after, from a"]
    )


def test_a_log_of_format_1_is_read_as_before_and_continued_by_name(tmp_path: Path) -> None:
    """Format 1: no ids, ``replaces`` names a cell. A new kernel replaces such an exchange by the
    name its offset gives it, and every kernel reading the log agrees on that name."""
    store = ConversationStore(NOTEBOOK, tmp_path)
    store.path.parent.mkdir(parents=True)
    old = [
        {"event": "start", "format": 1, "notebook": NOTEBOOK},
        {"event": "exchange", "cell": {"id": "A", "count": 1, "run": 1}, "replaces": "A", **_texts("a, first run")},
        {"event": "exchange", "cell": {"id": "B", "count": 2, "run": 2}, "replaces": "B", **_texts("b")},
        {"event": "exchange", "cell": {"id": "A", "count": 3, "run": 3}, "replaces": "A", **_texts("a, second run")},
    ]
    store.path.write_text("".join(json.dumps(event) + "\n" for event in old))
    first, second = Conversation.open(NOTEBOOK, tmp_path), Conversation.open(NOTEBOOK, tmp_path)
    assert questions(first) == ["b", "a, second run"]
    assert ask(first, "b, rerun", CellRun("B", 1, 1)) == []  # a new run of B forks before b: "a, second run" came after
    assert questions(second.refresh()) == questions(Conversation.open(NOTEBOOK, tmp_path)) == ["b, rerun"]


def _texts(question: str) -> dict:
    return {"question": [{"type": "text", "text": question}], "answer": [{"type": "text", "text": "ok"}]}


def test_following_the_log_reads_only_what_was_written_since(tmp_path: Path) -> None:
    store = ConversationStore(NOTEBOOK, tmp_path)
    for n in range(400):
        store.append({"event": "usage", "n": n})
    whole = store.follow()
    assert len(whole.events) == 401 and whole.cursor.offset == store.path.stat().st_size
    assert store.follow(whole.cursor).events == []
    store.append({"event": "usage", "n": 400})
    tail = store.follow(whole.cursor)
    assert [event["n"] for _, event in tail.events] == [400] and tail.events[0][0] == whole.cursor.offset
    assert not tail.restarted and tail.cursor.offset == store.path.stat().st_size


def test_a_torn_line_is_left_until_the_next_append_cuts_it_off(tmp_path: Path) -> None:
    notices: list[str] = []
    a, b = (
        Conversation.open(NOTEBOOK, tmp_path, notice=notices.append),
        Conversation.open(NOTEBOOK, tmp_path, notice=notices.append),
    )
    ask(a, "one")
    with open(a.store.path, "ab") as log:
        log.write(b'{"event":"exchange","id":"torn","question":[{"type":"te')  # a kernel died mid-write
    assert questions(b.refresh()) == ["one"] and len(notices) == 1 and "incomplete" in notices[0]
    assert ask(b, "two") == ["one"]
    assert ask(a, "three") == ["one", "two"]
    assert questions(Conversation.open(NOTEBOOK, tmp_path)) == ["one", "two", "three"] and len(notices) == 1


# --- any interleaving: the log replayed is what every kernel had live ---------------------------------


@dataclass
class Kernel:
    conversation: Conversation
    last_run: dict[str, int] = field(default_factory=dict)
    """The model's copy of the kernel's last recorded run of each cell."""
    cell: CellRun = field(default_factory=CellRun)
    pending: tuple[Exchange, list[str]] | None = None
    """A question asked and not yet answered, and the ids in view when it was asked."""


@pytest.mark.parametrize("seed", range(25))
def test_replaying_the_log_gives_the_state_every_kernel_had_live(tmp_path: Path, seed: int) -> None:
    """Three kernels, three cells (and cell-less questions), questions overlapping in time,
    restarts and resets, in a random order. A model says what the conversation must be: a new
    run of a cell sets aside, of what the kernel had in view when it asked, that cell's first
    exchange and every one after it."""
    rng = random.Random(seed)
    serial = itertools.count(1)
    kernels = [Kernel(Conversation.open(NOTEBOOK, tmp_path)) for _ in range(3)]
    model: list[str] = []
    cell_of: dict[str, str | None] = {}

    def ids(conversation: Conversation) -> list[str]:
        return [e.question[-1]["text"] for e in conversation.exchanges]  # each question is asked once

    def is_new_run(kernel: Kernel, cell: CellRun) -> bool:
        return cell.cell_id is not None and kernel.last_run.get(cell.cell_id) != cell.run

    def forked(view: list[str], cell_id: str | None) -> list[str]:
        first = next((n for n, i in enumerate(view) if cell_of[i] == cell_id), len(view))
        return view[first:]

    for _ in range(80):
        kernel = rng.choice(kernels)
        action = rng.choices(["ask", "answer", "restart", "reset", "usage"], weights=[6, 6, 1, 0.5, 0.5])[0]
        if kernel.pending is None and action == "ask":
            if rng.random() < 0.7 or kernel.cell.cell_id is None:  # else: another question in the same run
                kernel.cell = CellRun(rng.choice(["A", "B", "C", None]), None, next(serial))
            view = ids(kernel.conversation.refresh())
            assert view == model  # caught up
            sent = questions(kernel.conversation, kernel.cell)
            assert sent == [i for i in model if not (is_new_run(kernel, kernel.cell) and i in forked(model, kernel.cell.cell_id))]
            kernel.pending = (exchange(f"q{len(cell_of)}", kernel.cell), view)
            cell_of[f"q{len(cell_of)}"] = kernel.cell.cell_id
        elif kernel.pending is not None and action == "answer":
            asked, view = kernel.pending
            replaced = forked(view, asked.cell.cell_id) if is_new_run(kernel, asked.cell) else []
            if is_new_run(kernel, asked.cell):
                kernel.last_run[str(asked.cell.cell_id)] = asked.cell.run
            model = [i for i in model if i not in replaced] + [asked.question[-1]["text"]]
            kernel.conversation.record(asked)
            kernel.pending = None
            assert ids(kernel.conversation) == model == ids(Conversation.open(NOTEBOOK, tmp_path))
        elif kernel.pending is None and action == "restart":
            kernel.conversation, kernel.last_run = Conversation.open(NOTEBOOK, tmp_path), {}
            assert ids(kernel.conversation) == model
        elif kernel.pending is None and action == "reset":
            kernel.conversation.clear()
            kernel.last_run, model = {}, []
        elif kernel.pending is None and action == "usage":
            kernel.conversation.note_usage("claude-sonnet-5-5", {"input_tokens": 1, "output_tokens": 1})
    for kernel in kernels:
        assert ids(kernel.conversation.refresh()) == model
    assert ids(Conversation.open(NOTEBOOK, tmp_path)) == model
