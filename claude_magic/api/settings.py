"""Defaults and the resolved client settings.

Every default that follows the API (model, API version, base URL) lives here and nowhere
else, so a new model generation or API version is a one-line change. Credentials follow
the official SDK's environment conventions (``ANTHROPIC_API_KEY``, ``ANTHROPIC_AUTH_TOKEN``,
``ANTHROPIC_BASE_URL``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 8192
DEFAULT_MAX_RETRIES = 2
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 5.0

WEB_SEARCH_TOOL = "web_search_20260318"
WEB_FETCH_TOOL = "web_fetch_20260318"
"""The server tools' versions current models (the 5 generations) take."""
LEGACY_WEB_SEARCH_TOOL = "web_search_20250305"
LEGACY_WEB_FETCH_TOOL = "web_fetch_20250910"
"""Their first versions, which every model that has them takes (the 4 generation's)."""
MCP_BETA = "mcp-client-2025-11-20"
"""The ``anthropic-beta`` flag of the MCP connector in the shape sent here (``mcp_servers`` and
``mcp_toolset`` tools)."""

MAX_REQUEST_BYTES = 32_000_000
"""The API's limit for a request body: "32 MB", read as the smaller, decimal megabytes."""

NO_SAMPLING_VERSION = "2026-10-21"
"""The first API version that rejects ``temperature``, ``top_p`` and ``top_k``."""
API_VERSIONS = (DEFAULT_API_VERSION, NO_SAMPLING_VERSION)
"""The versions we speak."""

SAMPLING_PARAMETERS = ("temperature", "top_p", "top_k")
Effort = Literal["low", "medium", "high", "xhigh", "max"]
EFFORT_LEVELS: tuple[str, ...] = get_args(Effort)


def as_effort(value: str | None) -> Effort | None:
    """A setting's effort level, checked against the levels the API takes."""
    if value is not None and value not in EFFORT_LEVELS:
        raise ValueError(f"effort {value!r}: one of {', '.join(EFFORT_LEVELS)}")
    return value  # type: ignore[return-value]  # checked just above


def accepts_sampling_parameters(api_version: str) -> bool:
    """Whether requests under ``api_version`` may carry temperature, top_p or top_k."""
    return api_version < NO_SAMPLING_VERSION


def undated_model_id(model: str) -> str:
    """A model id without its snapshot date: ``claude-haiku-4-5-20251001`` → ``claude-haiku-4-5``."""
    return re.sub(r"-\d{8}$", "", model)


def mask_secret(secret: str | None) -> str:
    """A form of a credential that is safe to show: its prefix and last four characters."""
    if not secret:
        return "(not set)"
    if len(secret) <= 16:
        return "*" * len(secret)
    return f"{secret[:7]}…{secret[-4:]}"


def _env(name: str) -> str | None:
    """An environment variable, with the SDK's rule that an empty string counts as unset."""
    return os.environ.get(name) or None


JUPYTER_PROXY_ENV = "CLAUDE_MAGIC_PROXY"
"""Set by claude-magic's Jupyter server extension in each kernel it starts: the URL of its proxy,
which holds the API key (the kernel gets the same URL as ``ANTHROPIC_BASE_URL`` and a token of
its own as ``ANTHROPIC_AUTH_TOKEN``)."""


def jupyter_proxy() -> str | None:
    """The Jupyter server's proxy this kernel was started with, if any."""
    return _env(JUPYTER_PROXY_ENV)


@dataclass(frozen=True)
class Credentials:
    """How requests authenticate: an API key (``x-api-key``) or a bearer token."""

    api_key: str | None = field(default=None, repr=False)
    auth_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> Credentials:
        return cls(api_key=_env("ANTHROPIC_API_KEY"), auth_token=_env("ANTHROPIC_AUTH_TOKEN"))

    @property
    def present(self) -> bool:
        return bool(self.api_key or self.auth_token)

    def headers(self) -> dict[str, str]:
        """The auth header; the API key wins when both are set, as in the SDK."""
        if self.api_key:
            return {"x-api-key": self.api_key}
        if self.auth_token:
            return {"authorization": f"Bearer {self.auth_token}"}
        return {}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.auth_token) if s)

    def __repr__(self) -> str:
        kind = "api_key" if self.api_key else "auth_token" if self.auth_token else "none"
        return f"Credentials({kind}={mask_secret(self.api_key or self.auth_token)})"


@dataclass(frozen=True)
class ClientSettings:
    """Everything the HTTP client needs; independent of IPython."""

    credentials: Credentials = field(default_factory=Credentials.from_env)
    base_url: str = field(default_factory=lambda: _env("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL)
    api_version: str = DEFAULT_API_VERSION
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retry_wait: float = 60.0
    """Longest ``retry-after`` we sleep through; a longer one is reported instead."""

    @property
    def key_held_by_server(self) -> bool:
        """Requests go through the Jupyter server's proxy, which holds the key: this kernel has
        only a token of its own for it (see :data:`JUPYTER_PROXY_ENV`)."""
        proxy = jupyter_proxy()
        credentials = self.credentials
        return proxy is not None and self.base_url == proxy and not credentials.api_key and bool(credentials.auth_token)


class SecretStr(str):
    """A credential: the real value for headers, a masked one wherever it is printed."""

    def __repr__(self) -> str:
        return repr(mask_secret(str(self)))
