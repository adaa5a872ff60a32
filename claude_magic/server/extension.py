"""The Jupyter server extension: ``ClaudeServer``, configured with ``c.ClaudeServer.*``.

Installing the package enables it (``etc/jupyter/jupyter_server_config.d/claude_magic.json``);
``jupyter server extension disable claude_magic`` turns it off. When the server loads it:

1. **Key custody.** The key comes from ``c.ClaudeServer.api_key``, else the file
   ``c.ClaudeServer.api_key_file`` names, else ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``,
   sent upstream as a bearer token). Both variables leave the server's own ``os.environ`` at once,
   before any kernel or terminal starts, so none inherits them. On JupyterHub, with
   ``c.ClaudeServer.hub_service_url`` set, the Hub service of :mod:`claude_magic.hub` holds the
   key instead: this server holds none, forwards to the service with its own Hub token, and its
   kernels don't inherit that token.
2. **Kernels** (:mod:`.kernels`): each one the server starts reaches Claude through the proxy below
   with a token of its own, and Python kernels have the magic loaded (``c.ClaudeServer.load_magic``).
3. **The proxy** (:mod:`.proxy`) at ``{base_url}claude-magic/v1/...``, sending the kernels' requests to
   ``c.ClaudeServer.upstream_url`` with the key, through one rate limiter
   (:mod:`claude_magic.api.limiter`) and one
   ledger with optional budgets (:mod:`.ledger`); ``{base_url}claude-magic/usage`` serves the
   ledger's figures as JSON.
4. **Moves** (:mod:`.moves`): the contents service's renames and deletions move or archive the
   notebooks' conversations.

Without a key the server still loads the magic and follows moves; its kernels use keys of their own.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Unicode, default

from ..api.limiter import Limits, RateLimiter
from ..api.redaction import remember
from ..api.settings import Credentials, mask_secret
from ..core.store import home
from .kernels import CREDENTIAL_VARIABLES, HUB_TOKEN_VARIABLES, KernelLaunch, KernelTokens, route_kernels_through
from .ledger import Ledger
from .moves import CONTENTS_EVENTS, ConversationMover
from .proxy import APIProxyHandler, KernelGate, Proxy, UsageHandler
from .settings import ProxySettings, drop_key_variables

PROXY_ROOT = "claude-magic"
"""The extension's routes live under ``{base_url}claude-magic/``."""
HUB_SERVICE_ENV = "CLAUDE_MAGIC_HUB_SERVICE_URL"
UNLIMITED = Limits(10**12, 10**12, 10**12)
"""A server whose upstream is the Hub service leaves the limits to it (one limiter for the whole Hub)."""


class ClaudeServer(ProxySettings, ExtensionApp):
    """claude-magic's Jupyter server extension (see the module's docstring)."""

    name = "claude_magic"
    description = "Holds the Anthropic API key for the kernels, shares its rate limits and keeps a ledger of usage."

    proxy_url = Unicode(
        "", help="How kernels reach this server's proxy (default: http://127.0.0.1:<port><base_url>claude-magic)."
    ).tag(config=True)
    load_magic = Bool(True, help="Load %claude in every Python kernel the server starts (no %load_ext needed).").tag(
        config=True
    )
    hub_service_url = Unicode(
        help="On JupyterHub: the claude-magic service's URL with its prefix (http://hub:10101/services/claude-magic), "
        "which then holds the key, the limits and the budgets; this server sends it its kernels' requests with its own "
        "Hub token (default: $CLAUDE_MAGIC_HUB_SERVICE_URL)."
    ).tag(config=True)
    kernels_keep_hub_token = Bool(
        False,
        help="On JupyterHub, let kernels inherit this server's Hub token ($JUPYTERHUB_API_TOKEN); by default they don't, "
        "so a cell can't reach the Hub service past this server.",
    ).tag(config=True)

    @default("hub_service_url")
    def _hub_service_from_environment(self) -> str:
        return os.environ.get(HUB_SERVICE_ENV, "")

    @property
    def _app(self) -> ServerApp:
        assert self.serverapp is not None, "the extension runs in a Jupyter server"
        return self.serverapp

    def initialize_settings(self) -> None:
        self.credentials = self._hub_token() if self.hub_service_url else self.take_key(self.log)
        remember(self.credentials.secrets())  # scrubbed from every text the ledger keeps
        self.tokens = KernelTokens()
        self.gate = KernelGate(
            self.tokens, kernel_running=lambda kernel: kernel in self._app.kernel_manager, notebook_of=self._notebook_of
        )
        self.proxy = Proxy(
            upstream_url=self.hub_service_url or self.upstream(),
            credentials=self.credentials,
            gate=self.gate,
            limiter=RateLimiter(UNLIMITED if self.hub_service_url else self.limits()),
            ledger=Ledger(Path(self.ledger_path) if self.ledger_path else home() / "ledger.sqlite3", self.budgets()),
            tell_upstream_the_caller=bool(self.hub_service_url),
            max_request_bytes=self.max_request_bytes,
            log=self.log,
        )
        self.proxy.open()
        self._say_where_the_key_is()
        if self._app.gateway_config.gateway_enabled:
            self.log.warning(
                "claude-magic: kernels run behind a gateway, where this server can't give them a way to its proxy"
            )
        else:
            withheld = CREDENTIAL_VARIABLES + (
                HUB_TOKEN_VARIABLES if self.hub_service_url and not self.kernels_keep_hub_token else ()
            )
            route_kernels_through(
                self._app.kernel_manager, KernelLaunch(self.tokens, self.kernel_proxy_url, self.load_magic, withheld)
            )
        self.mover = ConversationMover(self._app.root_dir, log=self.log)
        assert self._app.event_logger is not None, "jupyter_server 2 has an event logger"
        self._app.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=self._on_contents_event)

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (url_path_join(PROXY_ROOT, "usage"), UsageHandler, {"proxy": self.proxy, "gate": self.gate}),
                (url_path_join(PROXY_ROOT, "(.*)"), APIProxyHandler, {"proxy": self.proxy}),
            ]
        )

    async def stop_extension(self) -> None:
        await self.proxy.close()
        self.proxy.ledger.close()

    # --- the key --------------------------------------------------------------------------------

    def _hub_token(self) -> Credentials:
        """On JupyterHub the Hub service holds the key: this server authenticates to it with its own
        Hub token, which names its user. A key in this server's environment is dropped all the same."""
        drop_key_variables()
        token = next((os.environ[name] for name in HUB_TOKEN_VARIABLES if os.environ.get(name)), None)
        if token is None:
            self.log.error(
                "claude-magic: %s is set but this server has no Hub token ($JUPYTERHUB_API_TOKEN)", HUB_SERVICE_ENV
            )
        return Credentials(auth_token=token)

    def _say_where_the_key_is(self) -> None:
        credentials, upstream = self.credentials, self.proxy.upstream_url
        if not credentials.present:
            self.log.warning(
                "claude-magic: no API key (ANTHROPIC_API_KEY, c.ClaudeServer.api_key_file or c.ClaudeServer.api_key): "
                "kernels use keys of their own"
            )
            return
        if self.hub_service_url:
            self.log.info(
                "claude-magic: the JupyterHub service at %s holds the API key; kernels reach it through this server",
                upstream,
            )
            return
        held = mask_secret(credentials.api_key or credentials.auth_token)
        offline = " (on this machine: the offline stand-in, or a gateway of yours)" if _is_local(upstream) else ""
        self.log.info(
            "claude-magic: the server holds the API key %s; kernels reach %s%s through its proxy",
            held,
            upstream,
            offline,
        )

    def kernel_proxy_url(self) -> str | None:
        """Where kernels reach the proxy; None without a key (kernels then start as they would)."""
        if not self.credentials.present:
            return None
        if self.proxy_url:
            return str(self.proxy_url)
        app = self._app
        if app.sock:
            self.log.warning(
                "claude-magic: the server listens on a UNIX socket: set c.ClaudeServer.proxy_url for its kernels"
            )
            return None
        scheme = "https" if app.certfile else "http"
        return f"{scheme}://{_loopback(app.ip)}:{app.port}{url_path_join(app.base_url, PROXY_ROOT)}"

    # --- the rest -------------------------------------------------------------------------------

    async def _notebook_of(self, kernel: str) -> str | None:
        """The notebook (its contents path) a kernel's session runs, if any."""
        try:
            session = await self._app.session_manager.get_session(kernel_id=kernel)
        except Exception:  # noqa: BLE001 - no session (a kernel started through /api/kernels)
            return None
        path = session.get("path")
        return str(path) if path else None

    async def _on_contents_event(self, logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        if data.get("action") in ("rename", "delete"):
            await asyncio.to_thread(self.mover.on_event, data)


def _loopback(ip: str) -> str:
    """The address kernels on this machine reach a server listening on ``ip`` by."""
    if ip in ("", "*", "0.0.0.0", "localhost", "127.0.0.1"):
        return "127.0.0.1"
    if ip in ("::", "::1"):
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip


def _is_local(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")
