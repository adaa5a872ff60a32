"""Cell-aware history: a re-run cell replaces its exchange; nothing else moves."""

from __future__ import annotations

from claude_magic.core.conversation import CellRun, Conversation, Exchange


def exchange(question: str, cell: CellRun, answer: str = "ok") -> Exchange:
    return Exchange(question=[{"type": "text", "text": question}], answer=[{"type": "text", "text": answer}] if answer else [], cell=cell)


def questions(conversation: Conversation, cell: CellRun | None = None) -> list[str]:
    return [m["content"][0]["text"] for m in conversation.messages(cell) if m["role"] == "user"]


def test_a_new_run_of_a_cell_replaces_all_its_earlier_exchanges() -> None:
    c = Conversation()
    c.record(exchange("a1", CellRun("A", 1, 1)))
    c.record(exchange("a2", CellRun("A", 1, 1)))  # a second question in the same run stays
    c.record(exchange("b", CellRun("B", 2, 2)))
    rerun = CellRun("A", 3, 3)
    assert questions(c, rerun) == ["b"]  # what the re-run is sent with
    assert questions(c) == ["a1", "a2", "b"]  # building a request changes nothing
    c.record(exchange("a3", rerun))
    assert questions(c) == ["b", "a3"]


def test_without_cell_ids_exchanges_append() -> None:
    c = Conversation()
    c.record(exchange("one", CellRun()))
    c.record(exchange("two", CellRun()))
    assert questions(c, CellRun()) == ["one", "two"]


def test_an_unanswered_exchange_changes_nothing() -> None:
    c = Conversation()
    c.record(exchange("a", CellRun("A", 1, 1)))
    c.record(exchange("a again", CellRun("A", 2, 2), answer=""))
    assert questions(c) == ["a"]
    assert [m["role"] for m in c.messages()] == ["user", "assistant"]
