"""claude-magic: Claude in Jupyter, as ``%%claude`` magics that stream rendered Markdown.

``%load_ext claude_magic`` registers the magics. Importing this package is cheap: the HTTP
client, pydantic models and everything optional load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "__version__",
    "batch_result",
    "batches",
    "cancel_batch",
    "chat",
    "load_ipython_extension",
    "map",
    "unload_ipython_extension",
]


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


def map(  # shadows the builtin here only: the name users know for "the same function over every item"
    template: str,
    rows: Any,
    *,
    schema: Any = None,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    effort: str | None = None,
    thinking: bool | int = False,
    tools: Iterable[Any] = (),
    attach: Iterable[str] = (),
    item: str = "item",
    batch: bool | None = None,
    concurrency: int | None = None,
    usage: bool = False,
    fresh: bool = False,
    yes: bool = False,
) -> Any:
    """Ask ``template`` of every row of ``rows``; one row of answers per row, in the same order.

    ``rows``: a pandas or polars DataFrame (its columns fill ``{column}``), a Series or any iterable
    (each item fills ``{item}``, or the name ``item=`` gives; a Series' own name too), or an iterable
    of dicts. Other ``{name}``s are the notebook's variables; other braces stay as written.
    ``schema``: a pydantic model, a TypedDict or a JSON schema: the result has one column per field
    (structured outputs, checked by pydantic); without one, an ``answer`` column of text. A row that
    failed has its reason in the ``error`` column. ``usage=True`` adds tokens and cost per row.
    ``attach``: columns whose values are attached to their row (images, frames, text).
    The result is a DataFrame of the input's library (pandas: the same index, so ``df.join(result)``
    lines up), or a list of dicts. Options default to the magic's settings (``%config ClaudeMagics``).

    Concurrent (``concurrency``, default ``ClaudeMagics.rows_concurrency``) under the rate limits,
    with a progress bar; above ``confirm_above_usd`` it asks first (``yes=True``: don't). Every answered
    row is kept: running it again (after an interrupt, or a kernel restart) sends only the rest.
    ``batch=True`` sends the rows as a Message Batch (half the price; most end within the hour),
    and so does a job above ``ClaudeMagics.batch_above_rows`` rows unless ``batch=False``.
    """
    from .magics.rows import map_rows

    return map_rows(
        _magics(),
        template,
        rows,
        schema=schema,
        model=model,
        system=system,
        max_tokens=max_tokens,
        effort=effort,
        thinking=thinking,
        tools=tools,
        attach=attach,
        item=item,
        batch=batch,
        concurrency=concurrency,
        usage=usage,
        fresh=fresh,
        yes=yes,
    )


def batches() -> Any:
    """This notebook's Message Batches, newest first, with their state now."""
    from .magics.rows import list_batches

    return list_batches(_magics())


def batch_result(batch_id: str, *, schema: Any = None, usage: bool = False) -> Any:
    """The result of the job that submitted batch ``batch_id`` (from this notebook), as ``map``
    returned it: waits for the job's batches to end, then reads their results (after a kernel
    restart too). ``schema``: check the answers with this model rather than the saved JSON schema."""
    from .magics.rows import batch_result as result

    return result(_magics(), batch_id, schema=schema, usage=usage)


def cancel_batch(batch_id: str) -> None:
    """Cancel a Message Batch: requests not yet processed are not answered (nor billed)."""
    from .magics.rows import cancel_batch as cancel

    cancel(_magics(), batch_id)


_standalone: Any = None


def _magics() -> Any:
    """The magic's settings and session: the loaded extension's in IPython (loading it if need
    be), else one of this process's own (a script), with the settings' defaults."""
    global _standalone
    from IPython import get_ipython

    from .magics import ClaudeMagics

    shell = get_ipython()
    if shell is None:
        if _standalone is None:
            _standalone = ClaudeMagics(shell=None)
        return _standalone
    if ClaudeMagics.__name__ not in shell.magics_manager.registry:
        shell.extension_manager.load_extension("claude_magic")
    return shell.magics_manager.registry[ClaudeMagics.__name__]
