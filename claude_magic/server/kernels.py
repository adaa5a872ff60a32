"""What a kernel this Jupyter server starts gets from the extension: a way to Claude without the
key, and the magic loaded.

Every kernel the server starts goes through its ``MappingKernelManager.start_kernel``: JupyterLab
and Notebook 7 through a session (``SessionManager.start_kernel_for_session`` passes an ``env``
built from ``os.environ`` plus ``JPY_SESSION_NAME``), ``POST /api/kernels`` without one (jupyter_client
then copies ``os.environ``). So that one call is wrapped (:func:`route_kernels_through`): the kernel's
id is chosen up front, as the manager would choose it, and the launch gets

- ``ANTHROPIC_BASE_URL`` pointing at the proxy on this server, and the kernel's own token in
  ``ANTHROPIC_AUTH_TOKEN`` (which the magic, and Anthropic's SDK, send as a bearer token), with
  ``CLAUDE_MAGIC_PROXY`` saying the key is held here; ``ANTHROPIC_API_KEY`` is never in it;
- for a Python kernel run by ipykernel, ``--ext=claude_magic.autoload`` (ipykernel's alias of
  ``InteractiveShellApp.extra_extensions``): ``%claude`` without ``%load_ext``. Other kernels get
  no argument they would not understand.

jupyter_client keeps the launch arguments (``_launch_args``: the env and the extra arguments) and
starts a restarted kernel with them, so a restart keeps both; the token is the same, since it is
made from the kernel's id (:class:`KernelTokens`). A renamed notebook's session updates only
``JPY_SESSION_NAME`` in that env (``update_env``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.settings import JUPYTER_PROXY_ENV

AUTOLOAD_EXTENSION = "claude_magic.autoload"
"""Loaded by ipykernel at start: the magic, without ``%load_ext`` (and ``%load_ext claude_magic``
in a notebook then does nothing, silently)."""
CREDENTIAL_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
"""Never passed on to a kernel from the server's environment."""
HUB_TOKEN_VARIABLES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
"""A single-user server's Hub token (and its old name): on a Hub whose service holds the key, not
passed on either, so that a cell can't call the service as its user past the server's proxy."""
TOKEN_PREFIX = "cmk-"


@dataclass(frozen=True)
class KernelTokens:
    """Per-kernel tokens for the proxy: ``cmk-<kernel id>.<HMAC-SHA256 of the id>`` under a secret
    made when the server starts. Nothing is stored: a token names its kernel, and is good as long
    as that kernel runs on this server (the proxy checks that); a restarted server makes new ones."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def token(self, kernel_id: str) -> str:
        return f"{TOKEN_PREFIX}{kernel_id}.{self._mac(kernel_id)}"

    def kernel_of(self, token: str | None) -> str | None:
        """The kernel a token was made for, or None for anything that is not one of ours."""
        if not token or not token.startswith(TOKEN_PREFIX):
            return None
        kernel_id, _, mac = token[len(TOKEN_PREFIX) :].rpartition(".")
        if not kernel_id or not hmac.compare_digest(mac, self._mac(kernel_id)):
            return None
        return kernel_id

    def _mac(self, kernel_id: str) -> str:
        digest = hmac.new(self.secret, kernel_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class KernelLaunch:
    """What the extension adds to a kernel's launch."""

    tokens: KernelTokens
    proxy_url: Callable[[], str | None]
    """Where kernels reach the proxy (asked at each start: the server's port is known once it
    listens); None when the server holds no key, and kernels start as they would without it."""
    load_magic: bool = True
    withheld: tuple[str, ...] = CREDENTIAL_VARIABLES
    """Variables of the server's environment a kernel never gets."""

    def arranged(self, kernel_id: str, spec: Any, launch: Mapping[str, Any]) -> dict[str, Any]:
        """``launch`` (the keyword arguments of ``start_kernel``) for kernel ``kernel_id`` of kernel spec ``spec``."""
        arranged = dict(launch)
        env = {k: v for k, v in (launch.get("env") or os.environ).items() if k not in self.withheld}
        if (proxy := self.proxy_url()) is not None:
            env.update(
                {
                    "ANTHROPIC_BASE_URL": proxy,
                    "ANTHROPIC_AUTH_TOKEN": self.tokens.token(kernel_id),
                    JUPYTER_PROXY_ENV: proxy,
                }
            )
        arranged["env"] = env
        if self.load_magic and runs_ipykernel(spec):
            arranged["extra_arguments"] = [*launch.get("extra_arguments", []), f"--ext={AUTOLOAD_EXTENSION}"]
        return arranged


def runs_ipykernel(spec: Any) -> bool:
    """A Python kernel that ipykernel runs (the only kind that takes ``--ext``)."""
    return str(getattr(spec, "language", "")).lower() == "python" and any(
        "ipykernel" in str(arg) for arg in getattr(spec, "argv", [])
    )


def route_kernels_through(kernel_manager: Any, launch: KernelLaunch) -> None:
    """Wrap the server's ``kernel_manager.start_kernel`` so that every kernel it starts from now
    on is launched as :class:`KernelLaunch` arranges (see the module's docstring)."""
    start = kernel_manager.start_kernel

    async def start_kernel(*, kernel_id: str | None = None, kernel_name: str | None = None, **kwargs: Any) -> str:
        if kernel_id is not None and kernel_id in kernel_manager:  # an existing kernel: nothing starts
            return await start(kernel_id=kernel_id, kernel_name=kernel_name, **kwargs)  # type: ignore[no-any-return]
        kernel_id = kernel_id or kernel_manager.new_kernel_id()
        try:
            spec = kernel_manager.kernel_spec_manager.get_kernel_spec(kernel_name or kernel_manager.default_kernel_name)
        except Exception:  # noqa: BLE001 - no such kernel: the manager says so in its own words
            spec = None
        if spec is not None:
            kwargs = launch.arranged(kernel_id, spec, kwargs)
        return await start(kernel_id=kernel_id, kernel_name=kernel_name, **kwargs)  # type: ignore[no-any-return]

    kernel_manager.start_kernel = start_kernel
