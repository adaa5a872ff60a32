"""Provenance on every answer and replay from the notebook, in real kernels: the metadata of an
answer's final output (what the stand-in received, hashed as it received it; never the key),
``%claude why``, and a notebook saved by nbclient re-run without a key, answered from itself."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment
from nbclient import NotebookClient

from claude_magic import __version__
from claude_magic.core.pricing import cost
from claude_magic.testing import StandIn
from claude_magic.ui.render import literal_markdown

pytestmark = pytest.mark.kernel

KEY = "sk-ant-provenance-RECOGNISABLE-5f1e9c2b7a"


@pytest.fixture(autouse=True)
def quiet(server: StandIn) -> None:
    server.reset()


def provenance_of(output: dict[str, Any]) -> dict[str, Any]:
    return output["metadata"]["claude_magic"]


# --- provenance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("live", [True, False], ids=["streamed", "shown once"])
def test_an_answers_final_output_carries_what_produced_it_and_never_the_key(server: StandIn, tmp_path: Path, live: bool) -> None:
    env = {**stand_in_environment(server.base_url, KEY, tmp_path / "home", str(tmp_path / "n.ipynb")), "CLAUDE_MAGIC_LIVE_UPDATES": "1" if live else "0"}
    with Kernel(env) as k:
        k.ok("%load_ext claude_magic\nimport numpy as np\nimport pandas as pd")
        k.ok("gradient = np.dstack([np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))] * 3)\nsales = pd.DataFrame({'x': [1, 2]})")
        asked = k.ok("%%claude --think -a gradient,sales -s 'Be terse.' --max-tokens 4000 --effort low\nWhat is this? [[markdown]]")
        everything = asked.everything()
    sent = server.message_requests[-1]
    answer, footer = asked.displays()
    saved = provenance_of(answer)
    assert saved["request_sha256"] == sent.digest  # the bytes the server received
    assert saved["model"] == "claude-sonnet-5-5" and saved["api_version"] == "2023-06-01"
    assert saved["settings"] == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 4000,
        "effort": "low",
        "thinking": sent.body["thinking"],
        "system_sha256": hashlib.sha256(b"Be terse.").hexdigest(),
        "tools": [],
    }
    image = next(b for b in sent.messages[-1]["content"] if b["type"] == "image")
    assert [a["name"] for a in saved["attachments"]] == ["gradient", "sales"]
    assert saved["attachments"][0]["sha256"] == hashlib.sha256(base64.b64decode(image["source"]["data"])).hexdigest()
    assert image["source"]["data"] not in json.dumps(saved)  # images by hash, never bytes
    assert saved["usage"]["output_tokens"] > 0 and saved["cost_usd"] == pytest.approx(cost("claude-sonnet-5-5", saved["usage"]))
    assert saved["stop_reason"] == "end_turn" and saved["complete"] is True
    assert re.fullmatch(r"req_standin_\d+", saved["request_id"]) and saved["message_id"].startswith("msg_")
    answered = datetime.strptime(saved["answered_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - answered) < timedelta(minutes=2)
    assert saved["package_version"] == __version__
    assert [b["type"] for b in saved["content"]] == ["thinking", "text"] and saved["content"][0]["signature"]
    assert saved["content"][1]["text"] == answer["data"]["text/plain"] == sent.answer
    assert footer["metadata"] == {}
    if live:  # the placeholder had none; the last update carries it (JupyterLab and nbclient keep an update's metadata)
        assert asked.of_type("display_data")[0]["content"]["metadata"] == {}
        assert asked.of_type("update_display_data")[-1]["content"]["metadata"] == answer["metadata"]
    assert KEY not in everything and KEY[-12:] not in everything
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%claude …", outputs=[nbformat.v4.new_output(**o) for o in _saved(asked)])])
    nbformat.validate(notebook)


def _saved(result: CellResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in o.items() if k != "display_id"} for o in result.displays()]


def test_an_answer_from_the_answer_cache_shows_its_thinking_and_says_so_in_its_provenance(server: StandIn, tmp_path: Path) -> None:
    with Kernel(stand_in_environment(server.base_url, KEY, tmp_path / "home", str(tmp_path / "n.ipynb"))) as k:
        k.ok("%load_ext claude_magic")
        first, again = (k.ok("%claude --cached --no-history --think Which join keeps every row?").displays() for _ in range(2))
    [sent] = server.message_requests
    assert again[0]["data"] == first[0]["data"] and "<details><summary>Thinking</summary>" in again[0]["data"]["text/markdown"]
    assert "from the answer cache" in again[1]["data"]["text/plain"]
    fresh, cached = provenance_of(first[0]), provenance_of(again[0])
    assert cached["request_sha256"] == fresh["request_sha256"] == sent.digest  # the request it would have sent
    assert cached["cached_at"] and "cached_at" not in fresh and cached["request_id"] is None
    assert cached["content"] == fresh["content"]


def test_why_shows_the_last_answer_or_turn_n_and_other_words_ask(server: StandIn, tmp_path: Path) -> None:
    with Kernel(stand_in_environment(server.base_url, KEY, tmp_path / "home", str(tmp_path / "n.ipynb"))) as k:
        k.ok("%load_ext claude_magic")
        assert "no answer yet" in k.run("%claude why").stderr
        first = provenance_of(k.ok("%claude -s 'You explain.' What is a join?").displays()[0])
        second = provenance_of(k.ok("%claude --no-history -m claude-haiku-4-5 -t 0.5 Aside?").displays()[0])
        last = k.ok("%claude why").displays()[0]["data"]
        turn = k.ok("%claude why 1").displays()[0]["data"]
        assert "N is a turn of %claude history (1 to 1)" in k.run("%claude why 2").stderr
        k.ok("%claude why is the sky blue?")
    assert server.message_requests[-1].prompts() == ["What is a join?", "why is the sky blue?"]  # a question, not the command
    assert "What produced the last answer" in last["text/plain"] and "What produced turn 1" in turn["text/plain"]
    for shown, saved in ((last, second), (turn, first)):
        rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown["text/plain"].splitlines()[3:])
        assert rows["request SHA-256"] == saved["request_sha256"] and rows["request id"] == saved["request_id"]
        assert rows["answered"] == f"{saved['answered_at']} (UTC)" and rows["package"] == f"claude-magic {__version__}"
        assert rows["model"] == saved["model"] and rows["max tokens"] == "8,192" and rows["stop reason"] == "end_turn"
        assert f"| request id | {literal_markdown(saved['request_id'])} |" in shown["text/markdown"]
    assert re.search(r"^temperature\s+0\.5$", last["text/plain"], re.MULTILINE)
    assert re.search(r"^system prompt\s+SHA-256 " + hashlib.sha256(b"You explain.").hexdigest(), turn["text/plain"], re.MULTILINE)


# --- replay from the notebook -----------------------------------------------------------------------

CELLS = [
    "%load_ext claude_magic",
    "%%claude\nWhat is a left join? [[markdown]]",
    "import numpy as np\ngradient = np.dstack([np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))] * 3)",
    "%%claude --think -a gradient\nDescribe this image.",
    '%claude -s "Be terse." --max-tokens 2000 --effort low And an inner join?',
    "%claude Summarise our conversation.",
]
ANSWERS = [1, 3, 4, 5]


def run(notebook: nbformat.NotebookNode, path: Path, env: dict[str, str | None]) -> nbformat.NotebookNode:
    """Run every cell as nbclient does, as the notebook at ``path`` (where it is saved)."""
    environment = {k: v for k, v in {**os.environ, **env, "JPY_SESSION_NAME": str(path)}.items() if v is not None}
    client = NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True)
    with client.setup_kernel(env=environment):
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    return notebook


NO_KEY = {"ANTHROPIC_API_KEY": None, "ANTHROPIC_AUTH_TOKEN": None, "ANTHROPIC_BASE_URL": None, "CLAUDE_MAGIC_REPLAY": None}


def stand_in(server: StandIn, home: Path, **extra: str) -> dict[str, str | None]:
    return {**NO_KEY, "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.base_url, "CLAUDE_MAGIC_HOME": str(home), **extra}


def shown(notebook: nbformat.NotebookNode, index: int) -> tuple[dict[str, Any], str]:
    """A cell's answer output and its footer's text."""
    answer, footer = [o for o in notebook.cells[index].outputs if o.output_type == "display_data"]
    return answer, footer["data"]["text/plain"]


@pytest.fixture
def saved(server: StandIn, tmp_path: Path) -> Path:
    """A notebook run by nbclient against the stand-in (answers streamed), then saved."""
    path = tmp_path / "shared.ipynb"
    notebook = run(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path, stand_in(server, tmp_path / "mine"))
    nbformat.write(notebook, path)
    server.reset()
    return path


def test_a_saved_notebook_replays_byte_for_byte_without_a_key(saved: Path, server: StandIn, tmp_path: Path) -> None:
    before = nbformat.read(saved, as_version=4)
    again = run(nbformat.read(saved, as_version=4), saved, {**NO_KEY, "CLAUDE_MAGIC_HOME": str(tmp_path / "colleague")})
    for index in ANSWERS:
        (original, _), (replayed, footer) = shown(before, index), shown(again, index)
        assert replayed.data["text/markdown"] == original.data["text/markdown"]
        assert replayed.data["text/plain"] == original.data["text/plain"]
        answered = original.metadata["claude_magic"]["answered_at"][:10]
        assert footer.endswith(f" · replayed from the notebook (answered {answered} by claude-sonnet-5-5), no cost")
        assert replayed.metadata["claude_magic"]["replayed_at"]
        assert {k: v for k, v in replayed.metadata["claude_magic"].items() if k != "replayed_at"} == original.metadata["claude_magic"]
    assert "<details><summary>Thinking</summary>" in shown(again, 3)[0].data["text/markdown"]


def test_replayed_answers_make_the_same_conversation_and_a_changed_question_is_sent(saved: Path, server: StandIn, tmp_path: Path) -> None:
    """With replay on and a stand-in, only the changed (last) question reaches it, with the history
    the original run recorded: its request is byte for byte the one a fresh run sends."""
    edited = nbformat.read(saved, as_version=4)
    edited.cells[-1].source = "%claude Summarise our conversation, in one line."
    replayed = run(edited, saved, stand_in(server, tmp_path / "colleague", CLAUDE_MAGIC_REPLAY="1"))
    [sent] = server.message_requests
    assert sent.prompts()[-1] == "Summarise our conversation, in one line."
    assert all("replayed from the notebook" in shown(replayed, i)[1] for i in ANSWERS[:-1])
    assert "replayed" not in shown(replayed, ANSWERS[-1])[1]
    server.reset()
    fresh = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source) for c in edited.cells])
    run(fresh, tmp_path / "elsewhere.ipynb", stand_in(server, tmp_path / "fresh"))
    assert server.message_requests[-1].digest == sent.digest


def test_without_a_key_a_changed_question_fails_in_one_line_saying_no_saved_answer_matches(saved: Path, tmp_path: Path) -> None:
    edited = nbformat.read(saved, as_version=4)
    edited.cells[4].source = edited.cells[4].source.replace("inner", "outer")
    again = run(edited, saved, {**NO_KEY, "CLAUDE_MAGIC_HOME": str(tmp_path / "colleague")})
    [error] = [o for o in again.cells[4].outputs if o.output_type == "error"]
    assert error.ename == "ClaudeMagicError" and len(error.traceback) == 1
    assert error.evalue.startswith("No API key: set ANTHROPIC_API_KEY")
    assert error.evalue.endswith(f"; no saved answer in {saved} matches this request")
    assert "replayed from the notebook" in shown(again, 3)[1]  # the cells before it replayed
