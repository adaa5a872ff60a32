"""The wire: a client for the Messages API that knows nothing of IPython.

:class:`Client` and :class:`AsyncClient` stream answers (:class:`MessageRequest` in, events and
an accumulated message out), retry as the SDK does and raise typed errors
(:mod:`claude_magic.api.errors`). Transport and authentication are httpx's own seams.

The names below load on first use: importing a module of this package (its settings, say)
must not import httpx and pydantic with it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import AsyncClient, Client, CredentialsAuth
    from .protocol import MessageRequest
    from .settings import ClientSettings, Credentials

_WHERE = {
    "AsyncClient": ".client",
    "Client": ".client",
    "CredentialsAuth": ".client",
    "MessageRequest": ".protocol",
    "ClientSettings": ".settings",
    "Credentials": ".settings",
}
__all__ = ["AsyncClient", "Client", "ClientSettings", "Credentials", "CredentialsAuth", "MessageRequest"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name], __name__), name)
