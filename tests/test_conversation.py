"""Cell-aware history: a re-run forks the conversation at the cell, setting aside what followed."""

from __future__ import annotations

from claude_magic.core.conversation import CellRun, Conversation, Exchange


def exchange(question: str, cell: CellRun, answer: str = "ok") -> Exchange:
    return Exchange(question=[{"type": "text", "text": question}], answer=[{"type": "text", "text": answer}] if answer else [], cell=cell)


def questions(conversation: Conversation, cell: CellRun | None = None) -> list[str]:
    return [m["content"][0]["text"] for m in conversation.messages(cell) if m["role"] == "user"]


def test_a_new_run_of_a_cell_sets_aside_its_exchanges_and_all_that_followed() -> None:
    c = Conversation()
    c.record(exchange("z", CellRun("Z", 1, 1)))
    c.record(exchange("a1", CellRun("A", 2, 2)))
    c.record(exchange("a2", CellRun("A", 2, 2)))  # a second question in the same run stays
    c.record(exchange("b", CellRun("B", 3, 3)))
    rerun = CellRun("A", 4, 4)
    assert questions(c, rerun) == ["z"]  # what the re-run is sent with: what came before the cell
    assert questions(c) == ["z", "a1", "a2", "b"]  # building a request changes nothing
    c.record(exchange("a3", rerun))
    assert questions(c) == ["z", "a3"]
    assert [(s.exchange.question[0]["text"], s.replaced) for s in c.set_aside] == [("a1", True), ("a2", True), ("b", False)]


def test_a_set_aside_exchange_can_be_restored_as_the_latest() -> None:
    c = Conversation()
    c.record(exchange("a", CellRun("A", 1, 1)))
    c.record(exchange("b", CellRun("B", 2, 2)))
    c.record(exchange("a again", CellRun("A", 3, 3)))
    c.restore(2)  # "b", the second set aside
    assert questions(c) == ["a again", "b"] and [s.exchange.question[0]["text"] for s in c.set_aside] == ["a"]


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
