"""claude-magic: Claude in Jupyter, as ``%%claude`` magics that stream rendered Markdown.

``%load_ext claude_magic`` registers the magics. Importing this package is cheap: the HTTP
client, pydantic models and everything optional load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%claude`` and ``%%claude`` (called by ``%load_ext claude_magic``)."""
    from .magics import ClaudeMagics

    ipython.register_magics(ClaudeMagics)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import ClaudeMagics

    magics = ipython.magics_manager.registry.get(ClaudeMagics.__name__)
    if magics is not None:
        magics.close()
