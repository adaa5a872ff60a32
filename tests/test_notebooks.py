"""The example notebooks, executed top to bottom by nbclient in a real kernel against the stand-in."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from claude_magic.render import display_markdown
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_shows_each_answer_whole(path: Path, stand_in: StandIn) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    answers = iter(r.answer for r in stand_in.message_requests)
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.lstrip().startswith(("%claude", "%%claude")):
            continue
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        if "--dry-run" in cell.source or cell.source.split()[1:2] in (["config"], ["models"]):
            continue
        shown = [o.data for o in cell.outputs if o.output_type == "display_data" and "text/markdown" in o.data]
        answer = next(answers)
        assert shown[0]["text/plain"] == answer
        assert shown[0]["text/markdown"] == display_markdown(answer)
        assert "offline stand-in" in shown[0]["text/markdown"]
    assert next(answers, None) is None
