"""claude-magic: Claude in Jupyter, as ``%%claude`` magics that stream rendered Markdown.

``%load_ext claude_magic`` registers the magics. Importing this package is cheap: the HTTP
client, pydantic models and everything optional load on first use.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "chat", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%claude`` and ``%%claude`` (called by ``%load_ext claude_magic``); nothing when
    they are registered already (a Jupyter server with the extension loads them at start)."""
    from .magics import ClaudeMagics

    if ClaudeMagics.__name__ not in ipython.magics_manager.registry:
        ipython.register_magics(ClaudeMagics)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import ClaudeMagics

    magics = ipython.magics_manager.registry.pop(ClaudeMagics.__name__, None)
    if magics is not None:
        magics.close()


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (``jupyter server extension list`` shows it): it holds the API
    key, proxies the kernels' requests, shares the rate limits and keeps the ledger; see
    :mod:`claude_magic.server`. Imported only by a Jupyter server, never by a kernel."""
    from .server.extension import ClaudeServer

    return [{"module": "claude_magic.server.extension", "app": ClaudeServer}]


def chat(side: bool = False) -> None:
    """Show the chat panel under the cell, as ``%claude chat`` does (loading the extension
    first if needed); ``side=True`` opens it in JupyterLab's side area (needs ``sidecar``)."""
    from IPython import get_ipython

    from .magics import ClaudeMagics
    from .ui.wording import ClaudeMagicError

    shell = get_ipython()
    if shell is None:
        raise ClaudeMagicError("claude_magic.chat() needs a notebook that shows widgets (JupyterLab, Notebook 7, VS Code)")
    if ClaudeMagics.__name__ not in shell.magics_manager.registry:
        shell.extension_manager.load_extension("claude_magic")
    shell.magics_manager.registry[ClaudeMagics.__name__].chat(side=side)
