"""The settings both mounts of the proxy share: the key, the upstream, the rate limits, the ledger.

``ClaudeServer`` (the Jupyter server extension, ``c.ClaudeServer.*``) and ``ClaudeProxy`` (the
JupyterHub service, ``c.ClaudeProxy.*``) each inherit :class:`ProxySettings`, so a setting has one
name, one help text and one meaning in both.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from traitlets import Enum, Float, HasTraits, Int, Unicode, default

from ..api.limiter import TIERS, Limits
from ..api.settings import DEFAULT_BASE_URL, MAX_REQUEST_BYTES, Credentials
from .kernels import CREDENTIAL_VARIABLES
from .ledger import Budgets

KEY_FILE_ENV = "CLAUDE_MAGIC_API_KEY_FILE"


class ProxySettings(HasTraits):
    api_key = Unicode(
        None,
        allow_none=True,
        help="The Anthropic API key (default: $ANTHROPIC_API_KEY). A key file keeps it out of config files.",
    ).tag(config=True)
    api_key_file = Unicode(
        help="A file holding the API key (its first line), read once at start (default: $CLAUDE_MAGIC_API_KEY_FILE). "
        "On JupyterHub, give the service its key this way: a managed service's environment is stored in the Hub's database."
    ).tag(config=True)

    upstream_url = Unicode(
        "", help=f"Where the proxy sends requests (default: $ANTHROPIC_BASE_URL, else {DEFAULT_BASE_URL})."
    ).tag(config=True)
    tier = Enum(
        list(TIERS),
        "free",
        help="The API rate-limit tier the limits start from; lower limits in the API's headers take over.",
    ).tag(config=True)
    requests_per_minute = Int(
        None, allow_none=True, help="Requests a minute for all callers together (default: the tier's)."
    ).tag(config=True)
    input_tokens_per_minute = Int(None, allow_none=True, help="Input tokens a minute (default: the tier's).").tag(
        config=True
    )
    output_tokens_per_minute = Int(None, allow_none=True, help="Output tokens a minute (default: the tier's).").tag(
        config=True
    )
    rate_window = Float(60.0, help="Seconds the rate limits count over: the API's minute (tests shorten it).").tag(
        config=True
    )
    daily_budget_usd = Float(
        None, allow_none=True, help="Most estimated USD all callers together may spend in a day; unset: no limit."
    ).tag(config=True)
    monthly_budget_usd = Float(
        None,
        allow_none=True,
        help="Most estimated USD all callers together may spend in a calendar month; unset: no limit.",
    ).tag(config=True)
    budget_timezone = Unicode(
        "UTC", help="Where the budgets' days and months begin at midnight (an IANA name: Europe/Paris)."
    ).tag(config=True)
    ledger_path = Unicode("", help="The usage ledger, an SQLite file.").tag(config=True)
    max_request_bytes = Int(MAX_REQUEST_BYTES, help="Largest request body the proxy takes (the API's 32 MB).").tag(
        config=True
    )

    @default("api_key_file")
    def _key_file_from_environment(self) -> str:
        return os.environ.get(KEY_FILE_ENV, "")

    def take_key(self, log: logging.Logger) -> Credentials:
        """The key, from config, a key file or the environment; the environment's variables go
        either way, so that no process started from now on inherits them."""
        from_environment = Credentials.from_env()
        drop_key_variables()
        if self.api_key:
            return Credentials(api_key=self.api_key)
        if self.api_key_file:
            try:
                key = Path(self.api_key_file).expanduser().read_text().strip().splitlines()
            except OSError as error:
                log.error(
                    "claude-magic: the key file %s can't be read (%s)", self.api_key_file, error.strerror or error
                )
                return Credentials()
            return Credentials(api_key=key[0].strip() if key else None)
        return from_environment

    def upstream(self) -> str:
        return self.upstream_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL

    def limits(self) -> Limits:
        tier = Limits.for_tier(self.tier, self.rate_window)
        return replace(
            tier,
            requests=self.requests_per_minute or tier.requests,
            input_tokens=self.input_tokens_per_minute or tier.input_tokens,
            output_tokens=self.output_tokens_per_minute or tier.output_tokens,
        )

    def budgets(self) -> Budgets:
        return Budgets(
            daily_usd=self.daily_budget_usd, monthly_usd=self.monthly_budget_usd, timezone=self.budget_timezone
        )


def drop_key_variables() -> None:
    """Take the key's variables out of this process's environment, before any kernel, terminal or
    other process it starts can inherit them."""
    for name in CREDENTIAL_VARIABLES:
        os.environ.pop(name, None)
