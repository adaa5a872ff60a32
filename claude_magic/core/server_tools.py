"""Tools the API runs itself: web search and web fetch, and remote MCP servers (the MCP connector).

``--web`` offers ``web_search`` and ``web_fetch`` in the versions the model takes (the newest
for current models, the first ones for the 4.x generation), each at most ``max_uses`` times a
request, web fetch with citations when the question asks for them. ``--mcp NAME`` sends the
MCP server declared under that name (its URL, its authorization token, the tools it may use)
in the request's ``mcp_servers``, with an ``mcp_toolset`` entry that allows only those tools.

The server runs these calls within the answer: its blocks (``server_tool_use`` and
``web_search_tool_result``, ``web_fetch_tool_result``; ``mcp_tool_use`` and
``mcp_tool_result``) arrive in the stream, complete, and are kept and sent back exactly as
they came. :class:`ServerCall` pairs a call with its result, for showing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.errors import ConfigurationError
from ..api.redaction import remember
from ..api.settings import LEGACY_WEB_FETCH_TOOL, LEGACY_WEB_SEARCH_TOOL, WEB_FETCH_TOOL, WEB_SEARCH_TOOL, SecretStr

CALL_TYPES = frozenset({"server_tool_use", "mcp_tool_use"})
RESULT_TYPES = frozenset({"web_search_tool_result", "web_fetch_tool_result", "mcp_tool_result"})
_GENERATION = re.compile(r"^claude-(?:[a-z]+-)?(\d+)\b")
"""The generation in a model id: ``claude-sonnet-4-5`` and ``claude-3-7-sonnet`` are of 4 and 3."""


@dataclass(frozen=True)
class ServerCall:
    """A call the API ran (a web search, a fetch, an MCP tool) and what it returned."""

    call: dict[str, Any]
    result: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.call.get("name") or "?")

    @property
    def arguments(self) -> dict[str, Any]:
        found = self.call.get("input")
        return found if isinstance(found, dict) else {}

    @property
    def server_name(self) -> str | None:
        """The MCP server that ran it (None for the API's own tools)."""
        return self.call.get("server_name")

    @property
    def is_error(self) -> bool:
        content = self.result.get("content")
        kind = content.get("type", "") if isinstance(content, dict) else ""
        return bool(self.result.get("is_error")) or kind.endswith("_error")


def web_tools(model: str, max_uses: int, *, cite: bool = False) -> tuple[dict[str, Any], ...]:
    """``web_search`` and ``web_fetch`` as ``model`` takes them, each at most ``max_uses`` times."""
    if max_uses < 1:
        raise ConfigurationError(f"web_max_uses {max_uses}: a request may search and fetch at least once (give 1 or more)")
    generation = _GENERATION.match(model)
    legacy = generation is not None and int(generation[1]) < 5  # the first versions, which every model with web tools takes
    search = {"type": LEGACY_WEB_SEARCH_TOOL if legacy else WEB_SEARCH_TOOL, "name": "web_search", "max_uses": max_uses}
    fetch: dict[str, Any] = {"type": LEGACY_WEB_FETCH_TOOL if legacy else WEB_FETCH_TOOL, "name": "web_fetch", "max_uses": max_uses}
    if cite:
        fetch["citations"] = {"enabled": True}
    return (search, fetch)


# --- MCP servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCPServer:
    """A remote MCP server as ``ClaudeMagics.mcp_servers`` declares it. The token is a
    :class:`~claude_magic.api.settings.SecretStr`: masked wherever it is printed."""

    name: str
    url: str
    token: SecretStr | None = None
    allowed_tools: tuple[str, ...] | None = None
    """Only these of its tools may be used (None: all of them)."""

    def definition(self) -> dict[str, Any]:
        """The entry for the request's ``mcp_servers`` (the token included: it goes to the API only)."""
        token = {"authorization_token": str(self.token)} if self.token else {}
        return {"type": "url", "url": self.url, "name": self.name, **token}

    def toolset(self) -> dict[str, Any]:
        """The entry for the request's ``tools``: the server's tools, or only those allowed."""
        if self.allowed_tools is None:
            return {"type": "mcp_toolset", "mcp_server_name": self.name}
        return {
            "type": "mcp_toolset",
            "mcp_server_name": self.name,
            "default_config": {"enabled": False},
            "configs": {tool: {"enabled": True} for tool in self.allowed_tools},
        }


def mcp_server(name: str, declared: Any, environ: Mapping[str, str]) -> MCPServer:
    """The server ``declared`` under ``name``: ``{"url": "https://…", "authorization_token": "…"
    (or "authorization_token_env": "VARIABLE"), "allowed_tools": ["…"]}``; a declaration that
    can't be used is one line saying why (never showing the token)."""
    if not isinstance(declared, Mapping):
        raise ConfigurationError(f"mcp_servers[{name!r}]: give a dict with its url (and authorization_token, allowed_tools)")
    unknown = sorted(set(declared) - {"url", "authorization_token", "authorization_token_env", "allowed_tools"})
    if unknown:
        raise ConfigurationError(f"mcp_servers[{name!r}]: unknown key {unknown[0]!r} (url, authorization_token, authorization_token_env, allowed_tools)")
    url = declared.get("url")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ConfigurationError(f"mcp_servers[{name!r}]: the url must start with https:// (the API connects to it)")
    token = declared.get("authorization_token")
    if token is None and (variable := declared.get("authorization_token_env")):
        token = environ.get(str(variable))
        if not token:
            raise ConfigurationError(f"mcp_servers[{name!r}]: the environment variable {variable} (its authorization token) is not set")
    allowed = declared.get("allowed_tools")
    if allowed is not None and (not isinstance(allowed, (list, tuple)) or not all(isinstance(t, str) for t in allowed)):
        raise ConfigurationError(f"mcp_servers[{name!r}]: allowed_tools is a list of tool names")
    if token:
        remember([str(token)])  # kept out of every file, log line and error from now on, as the key is
    return MCPServer(name, url, SecretStr(token) if token else None, tuple(allowed) if allowed is not None else None)


def mcp_servers_named(names: str, declared: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[MCPServer, ...]:
    """The servers ``--mcp NAME,OTHER`` names, each declared in ``ClaudeMagics.mcp_servers``."""
    servers = []
    for name in dict.fromkeys(n.strip() for n in names.split(",") if n.strip()):
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none is declared"
            raise ConfigurationError(f"--mcp {name}: no MCP server of that name in ClaudeMagics.mcp_servers ({known})")
        servers.append(mcp_server(name, declared[name], environ))
    return tuple(servers)
