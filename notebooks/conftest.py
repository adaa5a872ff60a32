"""nbval runs of the example notebooks: offline, and each answer recorded whole.

nbval compares the outputs a cell saved with the ones it produces now, but ignores
``update_display_data``, so a streamed answer would be compared as its first placeholder.
Here the kernels show each answer once, complete (``CLAUDE_MAGIC_LIVE_UPDATES=0``), as
``make notebooks`` did when it saved them. Without a key the notebooks start the stand-in
themselves; a developer's own key must not turn the run into real (and different) answers.
The environment is changed only while a notebook's kernel starts (in its first cell's
setup), so the rest of the test suite is unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

NOTEBOOK_ENV: dict[str, str | None] = {
    "CLAUDE_MAGIC_LIVE_UPDATES": "0",
    "ANTHROPIC_API_KEY": None,
    "ANTHROPIC_AUTH_TOKEN": None,
    "ANTHROPIC_BASE_URL": None,
    "JPY_SESSION_NAME": None,  # run from inside a notebook, the kernels would otherwise save their conversations
}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in NOTEBOOK_ENV}
    _apply(NOTEBOOK_ENV)
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
