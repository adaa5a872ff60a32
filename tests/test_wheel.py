"""The built wheel, installed into a fresh venv with no checkout on the path, works in a new kernel,
and Jupyter Server finds its extension enabled there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).parents[1]

RUN_NOTEBOOK = r'''
import json, os, sys
import nbformat
from nbclient import NotebookClient
from claude_magic.testing import StandIn

notebook = nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_code_cell("%load_ext claude_magic"),
    nbformat.v4.new_code_cell("%claude Hello from the wheel"),
    nbformat.v4.new_code_cell("import claude_magic; print(claude_magic.__file__)"),
])
with StandIn() as server:
    os.environ.update(ANTHROPIC_BASE_URL=server.base_url, ANTHROPIC_API_KEY="sk-ant-wheel-test")
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    answer = server.message_requests[-1].answer
shown = [o["data"]["text/plain"] for o in notebook.cells[1].outputs if o.get("output_type") == "display_data"]
print(json.dumps({"answer": answer, "shown": shown, "module": notebook.cells[2].outputs[0]["text"].strip()}))
'''


def run(*command: str | Path, cwd: Path, stderr: bool = False) -> str:
    """``command``'s output (with ``stderr``: both streams, without colours), checked to succeed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_CONFIG_DIR", "JUPYTER_PATH")}
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr) if stderr else done.stdout


def test_the_wheel_installs_into_a_fresh_venv_and_answers_in_a_new_kernel(tmp_path: Path) -> None:
    run(sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", tmp_path / "dist", ROOT, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("claude_magic-*.whl"))
    assert next((tmp_path / "dist").glob("claude_magic-*.tar.gz"))
    packaged = set(zipfile.ZipFile(wheel).namelist())
    for module in (ROOT / "claude_magic").rglob("*.py"):
        assert module.relative_to(ROOT).as_posix() in packaged  # the stand-in and every module ship
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata and "Project-URL" in metadata and "Classifier: Framework :: Jupyter" in metadata

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel, "ipykernel", "nbclient", "nbformat", "jupyter_server", cwd=tmp_path)
    result = json.loads(run(python, "-c", RUN_NOTEBOOK, cwd=tmp_path).strip().splitlines()[-1])
    assert result["module"].startswith(str(venv)), result["module"]
    assert result["shown"][0] == result["answer"] and "Hello from the wheel" in result["answer"]

    assert "etc/jupyter/jupyter_server_config.d/claude_magic.json" in "\n".join(packaged), "the wheel's shared data"
    listed = run(venv / "bin" / "jupyter", "server", "extension", "list", cwd=tmp_path, stderr=True)
    assert re.search(rf"Config dir: {re.escape(str(venv))}/etc/jupyter\n\s+claude_magic .*enabled", listed), listed
    assert re.search(r"claude_magic \S+ .*OK", listed), listed
