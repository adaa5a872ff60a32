"""The example notebooks, executed top to bottom by nbclient in a real kernel against the stand-in:
every answer the stand-in sent is shown, whole, in order (nbval then compares the saved outputs)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from claude_magic.testing import StandIn
from claude_magic.ui.render import display_markdown

pytestmark = pytest.mark.kernel

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_shows_each_answer_whole(path: Path, stand_in: StandIn) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    unexpected = [o for o, cell in ((o, c) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
                  if o.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])]
    assert not unexpected
    shown = [o.data for o in outputs if o.output_type == "display_data" and str(o.data.get("text/plain", "")).startswith("**Stand-in answer**")]
    sent = [r.answer for r in stand_in.message_requests if r.answer and r.answer.startswith("**Stand-in answer**")]
    assert [s["text/plain"] for s in shown] == sent and sent
    assert all(s["text/markdown"] == display_markdown(s["text/plain"]) for s in shown)
