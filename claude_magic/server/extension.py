"""The Jupyter server extension: ``ClaudeServer``, configured with ``c.ClaudeServer.*``.

Installing the package enables it (``etc/jupyter/jupyter_server_config.d/claude_magic.json``);
``jupyter server extension disable claude_magic`` turns it off. When the server loads it:

1. **Key custody.** The key comes from ``c.ClaudeServer.api_key``, else the file
   ``c.ClaudeServer.api_key_file`` names, else ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``,
   sent upstream as a bearer token). Both variables leave the server's own ``os.environ`` at once,
   before any kernel or terminal starts, so none inherits them.
2. **Kernels** (:mod:`.kernels`): each one the server starts reaches Claude through the proxy below
   with a token of its own, and Python kernels have the magic loaded (``c.ClaudeServer.load_magic``).
3. **The proxy** (:mod:`.proxy`) at ``{base_url}claude-magic/v1/...``, sending the kernels' requests to
   ``c.ClaudeServer.upstream_url`` with the key, through one rate limiter (:mod:`.limiter`) and one
   ledger with optional budgets (:mod:`.ledger`); ``{base_url}claude-magic/usage`` serves the
   ledger's figures as JSON.
4. **Moves** (:mod:`.moves`): the contents service's renames and deletions move or archive the
   notebooks' conversations.

Without a key the server still loads the magic and follows moves; its kernels use keys of their own.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Enum, Float, Int, Unicode

from ..api.limiter import TIERS, Limits, RateLimiter
from ..api.redaction import remember
from ..api.settings import DEFAULT_BASE_URL, MAX_REQUEST_BYTES, Credentials, mask_secret
from ..core.store import home
from .kernels import CREDENTIAL_VARIABLES, KernelLaunch, KernelTokens, route_kernels_through
from .ledger import Budgets, Ledger
from .moves import CONTENTS_EVENTS, ConversationMover
from .proxy import APIProxyHandler, Proxy, UsageHandler

PROXY_ROOT = "claude-magic"
"""The extension's routes live under ``{base_url}claude-magic/``."""


class ClaudeServer(ExtensionApp):
    """claude-magic's Jupyter server extension (see the module's docstring)."""

    name = "claude_magic"
    description = "Holds the Anthropic API key for the kernels, shares its rate limits and keeps a ledger of usage."

    api_key = Unicode(
        None, allow_none=True, help="The Anthropic API key (default: $ANTHROPIC_API_KEY). A key file keeps it out of config files."
    ).tag(config=True)
    api_key_file = Unicode("", help="A file holding the API key (its first line), read once at start.").tag(config=True)
    upstream_url = Unicode(
        "", help=f"Where the proxy sends requests (default: $ANTHROPIC_BASE_URL, else {DEFAULT_BASE_URL})."
    ).tag(config=True)
    proxy_url = Unicode(
        "", help="How kernels reach this server's proxy (default: http://127.0.0.1:<port><base_url>claude-magic)."
    ).tag(config=True)
    load_magic = Bool(True, help="Load %claude in every Python kernel the server starts (no %load_ext needed).").tag(config=True)
    tier = Enum(list(TIERS), "free", help="The API rate-limit tier the limits start from; lower limits in the API's headers take over.").tag(
        config=True
    )
    requests_per_minute = Int(None, allow_none=True, help="Requests a minute for all kernels together (default: the tier's).").tag(
        config=True
    )
    input_tokens_per_minute = Int(None, allow_none=True, help="Input tokens a minute (default: the tier's).").tag(config=True)
    output_tokens_per_minute = Int(None, allow_none=True, help="Output tokens a minute (default: the tier's).").tag(config=True)
    rate_window = Float(60.0, help="Seconds the rate limits count over: the API's minute (tests shorten it).").tag(config=True)
    daily_budget_usd = Float(None, allow_none=True, help="Most estimated USD all kernels may spend in a day; unset: no limit.").tag(
        config=True
    )
    monthly_budget_usd = Float(None, allow_none=True, help="Most estimated USD in a calendar month; unset: no limit.").tag(config=True)
    budget_timezone = Unicode("UTC", help="Where the budgets' days and months begin at midnight (an IANA name: Europe/Paris).").tag(
        config=True
    )
    ledger_path = Unicode("", help="The usage ledger, an SQLite file (default: ledger.sqlite3 beside the conversations).").tag(config=True)
    max_request_bytes = Int(MAX_REQUEST_BYTES, help="Largest request body the proxy takes (the API's 32 MB).").tag(config=True)

    @property
    def _app(self) -> ServerApp:
        assert self.serverapp is not None, "the extension runs in a Jupyter server"
        return self.serverapp

    def initialize_settings(self) -> None:
        self.credentials = self._take_key()
        remember(self.credentials.secrets())  # scrubbed from every text the ledger keeps
        self.tokens = KernelTokens()
        self.proxy = Proxy(
            upstream_url=self.upstream_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL,
            credentials=self.credentials,
            tokens=self.tokens,
            limiter=RateLimiter(self._limits()),
            ledger=Ledger(Path(self.ledger_path) if self.ledger_path else home() / "ledger.sqlite3", self._budgets()),
            kernel_running=lambda kernel: kernel in self._app.kernel_manager,
            notebook_of=self._notebook_of,
            max_request_bytes=self.max_request_bytes,
            log=self.log,
        )
        self.proxy.open()
        self._say_where_the_key_is()
        if self._app.gateway_config.gateway_enabled:
            self.log.warning("claude-magic: kernels run behind a gateway, where this server can't give them a way to its proxy")
        else:
            route_kernels_through(self._app.kernel_manager, KernelLaunch(self.tokens, self.kernel_proxy_url, self.load_magic))
        self.mover = ConversationMover(self._app.root_dir, log=self.log)
        assert self._app.event_logger is not None, "jupyter_server 2 has an event logger"
        self._app.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=self._on_contents_event)

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (url_path_join(PROXY_ROOT, "usage"), UsageHandler, {"proxy": self.proxy}),
                (url_path_join(PROXY_ROOT, "(.*)"), APIProxyHandler, {"proxy": self.proxy}),
            ]
        )

    async def stop_extension(self) -> None:
        await self.proxy.close()
        self.proxy.ledger.close()

    # --- the key --------------------------------------------------------------------------------

    def _take_key(self) -> Credentials:
        """The key, from config, a key file or the environment; the environment's variables go
        either way, so that no kernel or terminal started from now on inherits them."""
        from_environment = Credentials.from_env()
        for name in CREDENTIAL_VARIABLES:
            os.environ.pop(name, None)
        if self.api_key:
            return Credentials(api_key=self.api_key)
        if self.api_key_file:
            try:
                key = Path(self.api_key_file).expanduser().read_text().strip().splitlines()
            except OSError as error:
                self.log.error("claude-magic: the key file %s can't be read (%s)", self.api_key_file, error.strerror or error)
                return Credentials()
            return Credentials(api_key=key[0].strip() if key else None)
        return from_environment

    def _say_where_the_key_is(self) -> None:
        credentials, upstream = self.credentials, self.proxy.upstream_url
        if not credentials.present:
            self.log.warning(
                "claude-magic: no API key (ANTHROPIC_API_KEY, c.ClaudeServer.api_key_file or c.ClaudeServer.api_key): "
                "kernels use keys of their own"
            )
            return
        held = mask_secret(credentials.api_key or credentials.auth_token)
        offline = " (on this machine: the offline stand-in, or a gateway of yours)" if _is_local(upstream) else ""
        self.log.info("claude-magic: the server holds the API key %s; kernels reach %s%s through its proxy", held, upstream, offline)

    def kernel_proxy_url(self) -> str | None:
        """Where kernels reach the proxy; None without a key (kernels then start as they would)."""
        if not self.credentials.present:
            return None
        if self.proxy_url:
            return str(self.proxy_url)
        app = self._app
        if app.sock:
            self.log.warning("claude-magic: the server listens on a UNIX socket: set c.ClaudeServer.proxy_url for its kernels")
            return None
        scheme = "https" if app.certfile else "http"
        return f"{scheme}://{_loopback(app.ip)}:{app.port}{url_path_join(app.base_url, PROXY_ROOT)}"

    # --- the rest -------------------------------------------------------------------------------

    def _limits(self) -> Limits:
        tier = Limits.for_tier(self.tier, self.rate_window)
        return replace(
            tier,
            requests=self.requests_per_minute or tier.requests,
            input_tokens=self.input_tokens_per_minute or tier.input_tokens,
            output_tokens=self.output_tokens_per_minute or tier.output_tokens,
        )

    def _budgets(self) -> Budgets:
        return Budgets(daily_usd=self.daily_budget_usd, monthly_usd=self.monthly_budget_usd, timezone=self.budget_timezone)

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
