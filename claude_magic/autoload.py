"""The magic, loaded by ipykernel as a kernel starts (``--ext=claude_magic.autoload``, which the
Jupyter server extension adds to the Python kernels it starts).

Loaded under a name of its own, so that a notebook's ``%load_ext claude_magic`` finds the magic
there and says nothing (under the same name IPython would print "already loaded").
"""

from __future__ import annotations

from typing import Any

from . import load_ipython_extension as _load


def load_ipython_extension(ipython: Any) -> None:
    _load(ipython)
