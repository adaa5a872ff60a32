"""``claude-magic-proxy``: the JupyterHub service (see the package's docstring).

Run by the Hub as a managed service (``c.JupyterHub.services``, with the key in its ``environment``)
or on its own as an external one: either way it reads the Hub's ``JUPYTERHUB_*`` variables (its
URL, its prefix, its API token, its OAuth client) and its settings from ``-f <config file>``
(``c.ClaudeProxy.*``) or the command line (``--ClaudeProxy.requests_per_minute=200``).

Routes, under ``JUPYTERHUB_SERVICE_PREFIX`` (``/services/claude-magic/``):

- ``v1/...``: the proxy (:mod:`claude_magic.server.proxy`), for users' servers and their tokens;
- ``usage``: the ledger as JSON, everything for admins, a user's own figures for anyone else;
- the prefix itself: the same as a page, with a chart of the last 30 days (browsers log in through
  the Hub's OAuth, at ``oauth_callback``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado import web
from traitlets import Dict, Int, List, Unicode
from traitlets.config import Application

from ..api.limiter import RateLimiter
from ..api.redaction import remember
from ..server.ledger import Ledger
from ..server.policy import GroupPolicies
from ..server.proxy import APIProxyHandler, Proxy
from ..server.settings import ProxySettings
from .gate import HubGate
from .ledger_page import LedgerHandler, LedgerPageHandler

DEFAULT_PREFIX = "/services/claude-magic/"


class ClaudeProxy(ProxySettings, Application):
    """claude-magic's JupyterHub service."""

    name = "claude-magic-proxy"
    description = "Holds the Anthropic API key for a JupyterHub's users: shared rate limits, per-user budgets, model policy by group."

    config_file = Unicode("", help="A Python config file of c.ClaudeProxy.* settings.").tag(config=True)
    ledger_path = Unicode(
        "claude-magic-ledger.sqlite3", help="The usage ledger, an SQLite file (relative: to the working directory)."
    ).tag(config=True)
    user_policy = Dict(
        help="Every user's policy unless a group of theirs has one: "
        "{'daily_usd': 2.0, 'monthly_usd': 20.0, 'models': ['claude-haiku-*', 'claude-sonnet-*']} (each key optional)."
    ).tag(config=True)
    group_policies = Dict(
        help="Policies by Hub group, each key overriding the user policy's: {'students': {'daily_usd': 0.5, 'models': ['claude-haiku-*']}}. "
        "A user in several groups gets the most generous of them."
    ).tag(config=True)
    admin_groups = List(Unicode(), help="Hub groups whose members read the whole ledger (Hub admins always can).").tag(
        config=True
    )
    token_cache_seconds = Int(
        30, help="How long the Hub's answer about a token is kept: a revoked token works at most this long."
    ).tag(config=True)

    aliases = {  # noqa: RUF012 - traitlets' own declaration
        "f": "ClaudeProxy.config_file",
        "config": "ClaudeProxy.config_file",
        "upstream-url": "ClaudeProxy.upstream_url",
        "ledger": "ClaudeProxy.ledger_path",
        "log-level": "Application.log_level",
    }

    def initialize(self, argv: Any = None) -> None:
        self.parse_command_line(argv)
        if self.config_file:
            self.load_config_file(self.config_file)
            self.update_config(self.cli_config)  # the command line wins over the file
        self.policies = GroupPolicies.from_config(self.user_policy, self.group_policies, self.budget_timezone)

    def start(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        credentials = self.take_key(self.log)
        remember(credentials.secrets())
        if not credentials.present:
            self.log.warning(
                "claude-magic: no API key (ANTHROPIC_API_KEY or c.ClaudeProxy.api_key_file): every request will be refused upstream"
            )
        auth = HubOAuth.instance(cache_max_age=self.token_cache_seconds)  # the one the OAuth callback handler uses too
        ledger = Ledger(Path(self.ledger_path).expanduser(), self.budgets())
        proxy = Proxy(
            upstream_url=self.upstream(),
            credentials=credentials,
            gate=HubGate(auth, self.policies, self.log),
            limiter=RateLimiter(self.limits()),
            ledger=ledger,
            max_request_bytes=self.max_request_bytes,
            log=self.log,
        )
        proxy.open()
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX
        pages = {
            "hub_auth": auth,
            "ledger": ledger,
            "policies": self.policies,
            "admin_groups": frozenset(self.admin_groups),
        }
        app = web.Application(
            [
                (prefix + "oauth_callback", HubOAuthCallbackHandler),
                (prefix + "usage", LedgerHandler, pages),
                (prefix + "(v1/.*)", APIProxyHandler, {"proxy": proxy}),
                (prefix.rstrip("/") + "/?", LedgerPageHandler, pages),
            ],
            cookie_secret=secrets.token_bytes(32),  # the OAuth state's cookies
        )
        host, port = _listen_address()
        server = app.listen(port, address=host, xheaders=True)
        self.log.info(
            "claude-magic: the Hub service listens on %s:%s%s; upstream %s", host, port, prefix, proxy.upstream_url
        )
        try:
            await asyncio.Event().wait()
        finally:
            server.stop()
            await proxy.close()
            ledger.close()


def _listen_address() -> tuple[str, int]:
    """Where the Hub said the service is (``JUPYTERHUB_SERVICE_URL``)."""
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:10101")
    return url.hostname or "127.0.0.1", url.port or 80


def main(argv: Any = None) -> None:
    app = ClaudeProxy.instance()
    app.initialize(argv)
    try:
        app.start()
    except KeyboardInterrupt:
        pass
