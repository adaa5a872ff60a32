"""The index of answers saved in a notebook file (replay): what it finds, what it refuses, when it
reads the file again. Real files written by nbformat; no kernel."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nbformat
import pytest

from claude_magic.core.provenance import PROVENANCE_KEY, Attached, Provenance, Shaping
from claude_magic.core.replay import NotebookAnswers


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def provenance(question: str, text: str = "An answer.", **changes: object) -> Provenance:
    fields: dict[str, object] = {
        "model": "claude-sonnet-5-5",
        "api_version": "2023-06-01",
        "request_sha256": sha(question),
        "settings": Shaping("claude-sonnet-5-5", 8192, thinking={"type": "adaptive"}, system_sha256=sha("Be terse.")),
        "usage": {"input_tokens": 12, "output_tokens": 34},
        "cost_usd": 0.0001,
        "stop_reason": "end_turn",
        "request_id": "req_1",
        "message_id": "msg_1",
        "answered_at": "2026-11-20T10:04:31Z",
        "content": ({"type": "thinking", "thinking": "Hm.", "signature": "sig"}, {"type": "text", "text": text}),
        "attachments": (Attached.of("df", "pandas DataFrame", b"summary"),),
        **changes,
    }
    return Provenance(**fields)  # type: ignore[arg-type]


def answer_output(saved: Provenance | dict[str, object]) -> nbformat.NotebookNode:
    record = saved.to_json() if isinstance(saved, Provenance) else saved
    return nbformat.v4.new_output("display_data", data={"text/plain": "shown"}, metadata={PROVENANCE_KEY: record})


def write(path: Path, *outputs: nbformat.NotebookNode, markdown: str = "") -> None:
    cells = [nbformat.v4.new_markdown_cell(markdown), *(nbformat.v4.new_code_cell("%claude …", outputs=[o]) for o in outputs)]
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def test_the_record_round_trips_and_keeps_no_more_than_it_is_given() -> None:
    saved = provenance("q")
    assert Provenance.from_json(json.loads(json.dumps(saved.to_json()))) == saved
    assert saved.text == "An answer." and saved.thinking == "Hm."
    logged = Provenance.from_json(saved.to_json(with_content=False))
    assert logged is not None and logged.content == () and logged.request_sha256 == saved.request_sha256


@pytest.mark.parametrize("damage", [
    {"format": 2}, {"request_sha256": "not a hash"}, {"content": "text"}, {"content": [{"text": "no type"}]},
    {"attachments": [{"name": "no hash"}]}, {"settings": {"max_tokens": "many"}},
])
def test_a_record_of_another_format_or_damaged_is_not_read(damage: dict[str, object]) -> None:
    assert Provenance.from_json({**provenance("q").to_json(), **damage}) is None


def test_finds_complete_answers_by_request_hash_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    long_answer = "é" * 50_000 + "🙂" * 20_000  # past the first window, characters cut by it
    write(
        path,
        answer_output(provenance("first")),
        answer_output(provenance("long", long_answer)),
        answer_output(provenance("cut off", complete=False)),
        answer_output({**provenance("other format").to_json(), "format": 99}),
        markdown=f'Quoted, not saved: {json.dumps({PROVENANCE_KEY: provenance("quoted").to_json()})}',
    )
    answers = NotebookAnswers(path)
    assert answers.find(sha("first")) == provenance("first")
    found = answers.find(sha("long"))
    assert found is not None and found.text == long_answer
    assert [answers.find(sha(q)) for q in ("cut off", "other format", "quoted")] == [None, None, None]
    assert len(answers) == 2
    assert answers.why_none() == f"no saved answer in {path} matches this request"


def test_reads_the_file_again_when_it_changes_keeping_what_it_found(tmp_path: Path) -> None:
    path = tmp_path / "n.ipynb"
    write(path, answer_output(provenance("first")))
    answers = NotebookAnswers(path)
    assert answers.find(sha("second")) is None
    write(path, answer_output(provenance("second")))  # Run All cleared the first cell's output, autosave wrote it
    os.utime(path, ns=(1, 1))
    assert answers.find(sha("second")) is not None and answers.find(sha("first")) is not None


def test_a_file_that_cant_be_read_is_said_and_a_damaged_one_finds_what_it_can(tmp_path: Path) -> None:
    answers = NotebookAnswers(tmp_path / "missing.ipynb")
    assert answers.find(sha("q")) is None
    assert answers.why_none() == f"no saved answer could be replayed: {tmp_path / 'missing.ipynb'} could not be read (No such file or directory)"
    path = tmp_path / "torn.ipynb"
    write(path, answer_output(provenance("first")), answer_output(provenance("second")))
    text = path.read_text()
    path.write_text(text[: text.rindex('"request_sha256"')])  # the second record cut off
    assert NotebookAnswers(path).find(sha("first")) is not None and NotebookAnswers(path).find(sha("second")) is None
