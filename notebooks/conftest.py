"""nbval runs of the example notebooks: offline, and each answer recorded whole.

nbval compares the outputs a cell saved with the ones it produces now, but ignores
``update_display_data``, so a streamed answer would be compared as its first placeholder.
Here the kernels show each answer once, complete (``CLAUDE_MAGIC_LIVE_UPDATES=0``), as
``make notebooks`` did when it saved them. Without a key the notebooks start the stand-in
themselves; a developer's own key must not turn the run into real (and different) answers.
Each kernel is told its notebook's path and keeps the conversation in a fresh home of its
own, as a user's kernel in Jupyter would (and as ``make notebooks`` saved them). The
environment is changed only while a notebook's kernel starts (in its first cell's setup), so
the rest of the test suite is unaffected.

Each answer is replayed from the notebook's own file (``CLAUDE_MAGIC_REPLAY=1``): its request,
byte for byte the one ``make notebooks`` sent, finds the answer saved with its provenance, so
the stand-in the setup cell starts is asked only what no saved answer matches (nothing but the
error the quick start shows). ``make notebooks`` leaves replay at its default, off once that
setup cell has set a key, so it records fresh answers. Where replay and a fresh answer show
something different (the footer, ``%claude usage``, ``%claude why``), sanitize.cfg says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOTEBOOK_ENV: dict[str, str | None] = {
    "CLAUDE_MAGIC_LIVE_UPDATES": "0",
    "CLAUDE_MAGIC_REPLAY": "1",
    "ANTHROPIC_API_KEY": None,
    "ANTHROPIC_AUTH_TOKEN": None,
    "ANTHROPIC_BASE_URL": None,
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    notebook = Path(str(item.fspath))
    kernel_env = {**NOTEBOOK_ENV, "JPY_SESSION_NAME": str(notebook), "CLAUDE_MAGIC_HOME": _home_for(notebook)}
    saved = {name: os.environ.get(name) for name in kernel_env}
    _apply(kernel_env)
    try:
        yield
    finally:
        _apply(saved)


def _apply(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_homes: dict[Path, str] = {}


def _home_for(notebook: Path) -> str:
    """A fresh conversation home for each notebook, the same for all its cells."""
    if notebook not in _homes:
        _homes[notebook] = tempfile.mkdtemp(prefix=f"nbval-{notebook.stem}-")
    return _homes[notebook]
