"""``--code``: the answer's Python code put into new cells below, never run.

Code goes to the frontend as IPython's ``set_next_input`` payload. JupyterLab and Notebook 7
take the first payload of a reply; VS Code takes every one, each inserted right below the
cell (vscode-jupyter's ``cellExecutionMessageHandler``), so there the payloads go last first,
to land in order. A shell that can't take a payload (a terminal) shows the code instead.
"""

from __future__ import annotations

import re
from typing import Any

from ..ui.render import fenced, show_text

PYTHON_LANGUAGES = frozenset({"", "python", "py", "python3", "ipython", "ipython3", "pycon"})
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)[^\n]*\n(?P<code>.*?)^ {0,3}(?P=fence)[`~]*[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of an answer that hold Python (or have no language), in order."""
    return [m["code"].rstrip("\n") for m in _FENCE.finditer(markdown) if m["lang"].lower() in PYTHON_LANGUAGES]


def cells_for(blocks: list[str], one_cell_each: bool) -> list[str]:
    return blocks if one_cell_each else ["\n\n".join(blocks)] if blocks else []


def put_in_next_cells(shell: Any, cells: list[str], in_vscode: bool) -> str:
    """Offer ``cells`` as the next cells; returns the one-line note for the user."""
    if not cells:
        return "--code: the answer has no Python code block"
    payloads = getattr(shell, "payload_manager", None)
    if payloads is None or not hasattr(shell, "set_next_input"):
        code = "\n\n".join(cells)
        show_text({"text/markdown": fenced(code, "python"), "text/plain": code})
        return "--code: this shell can't take new cells from the kernel; the code is shown above"
    if len(cells) == 1:
        shell.set_next_input(cells[0], replace=False)
        return "--code: 1 new cell below, not run"
    for cell in reversed(cells) if in_vscode else cells:  # one payload each: set_next_input keeps only the last
        payloads.write_payload({"source": "set_next_input", "text": cell, "replace": False}, single=False)
    if in_vscode:
        return f"--code: {len(cells)} new cells below, not run"
    return f"--code: {len(cells)} cells offered below, not run (JupyterLab takes the first; set ClaudeMagics.code_cells = 'joined' for one cell with all)"
