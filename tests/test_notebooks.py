"""The example notebooks, executed top to bottom by nbclient in a real kernel against the stand-in:
every answer the stand-in sent is shown, whole, in order (nbval then compares the saved outputs);
and as nbval runs them, each saved answer replayed from the notebook itself."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from claude_magic.testing import StandIn
from claude_magic.ui.render import display_markdown

pytestmark = pytest.mark.kernel

FOLDER = Path(__file__).parents[1] / "notebooks"
JOBS = "rows.ipynb"
"""The notebook whose answers land in result frames, not in displays of their own."""
NOTEBOOKS = sorted(path for path in FOLDER.glob("*.ipynb") if path.name != JOBS)


def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook run top to bottom; no cell failed that was not meant to."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    unexpected = [o for o, cell in ((o, c) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
                  if o.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])]
    assert not unexpected
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_shows_each_answer_whole(path: Path, stand_in: StandIn) -> None:
    notebook = executed(path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    shown = [o.data for o in outputs if o.output_type == "display_data" and str(o.data.get("text/plain", "")).startswith("**Stand-in answer**")]
    sent = [r.answer for r in stand_in.message_requests if r.answer and r.answer.startswith("**Stand-in answer**")]
    assert [s["text/plain"] for s in shown] == sent and sent
    assert all(s["text/markdown"] == display_markdown(s["text/plain"]) for s in shown)


NOT_SAVED = {"quickstart.ipynb": ["Hello?"]}
"""What a notebook asks that no saved answer matches (an error the quick start shows)."""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_as_nbval_runs_them_each_saved_answer_is_replayed(path: Path) -> None:
    """In the environment notebooks/conftest.py gives nbval's kernels, the stand-in the setup
    cell starts is asked only what no saved answer matches; every answer says it was replayed."""
    spec = importlib.util.spec_from_file_location("notebooks_conftest", path.parent / "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    env = {**conftest.NOTEBOOK_ENV, "JPY_SESSION_NAME": str(path), "CLAUDE_MAGIC_HOME": tempfile.mkdtemp()}
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json\nfrom claude_magic import testing\nprint(json.dumps([r.prompts()[-1] for r in testing._notebook_stand_in.message_requests]))"
    ))
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel(env={k: v for k, v in {**os.environ, **env}.items() if v is not None}):
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    assert json.loads(notebook.cells[-1].outputs[0]["text"]) == NOT_SAVED.get(path.name, [])
    footers = [o.data["text/plain"] for c in notebook.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "display_data" and " out tokens · " in str(o.data.get("text/plain", ""))]
    assert footers and all("replayed from the notebook (answered " in f for f in footers)


def test_the_rows_notebook_asks_each_row_once(stand_in: StandIn) -> None:
    """Five rows classified, the re-run sending nothing, five asked from a cell, five in one batch."""
    executed(FOLDER / JOBS)
    assert len(stand_in.message_requests) == 10
    assert sum("output_config" in r.body for r in stand_in.message_requests) == 5
    (batch,) = [r.body for r in stand_in.requests if r.method == "POST" and r.path == "/v1/messages/batches"]
    assert len(batch["requests"]) == 5
