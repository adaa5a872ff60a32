"""Calls the API ran itself, shown collapsed as they happen: a web search with the titles and
addresses of its results, a fetched page, an MCP tool's call and result.

Every part of them comes from the model or a server (queries, titles, URLs, tool names and
results): it is written as escaped text, a URL is linked only when it is http(s) and then
percent-encoded (:func:`~claude_magic.ui.citations.html_link`), and a tool's result is a fenced
block no line of it can close, as a notebook function's result is.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .citations import html_link, html_text
from .render import fenced

if TYPE_CHECKING:
    from ..core.server_tools import ServerCall

FETCHED_PREVIEW = 300
"""Characters of a fetched page shown under its title."""


def summary(call: ServerCall) -> str:
    """One line: what was called, with what, and what came back (plain text, not yet escaped)."""
    arguments = call.arguments
    if call.server_name is not None:
        listed = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        outcome = "error" if call.is_error else "result"
        return " ".join(f"🔌 {call.server_name}.{call.name}({listed}) → {outcome}".split())
    content = call.result.get("content")
    if call.is_error:
        code = content.get("error_code", "error") if isinstance(content, dict) else "error"
        what = f"“{arguments.get('query', '')}”" if call.name == "web_search" else str(arguments.get("url", ""))
        return " ".join(f"{_icon(call)} {call.name.replace('_', ' ')}: {what} → error: {code}".split())
    if call.name == "web_search":
        found = len(content) if isinstance(content, list) else 0
        return " ".join(f"🔎 web search: “{arguments.get('query', '')}” → {found} result{'s' if found != 1 else ''}".split())
    title = _fetched(call).get("title") or "untitled"
    return " ".join(f"🌐 web fetch: {arguments.get('url', '')} → “{title}”".split())


def _icon(call: ServerCall) -> str:
    return "🔎" if call.name == "web_search" else "🌐"


def details_html(call: ServerCall, dollar: str = "\\$") -> str:
    """What the call found, as HTML on one line: the results' titles linked to their addresses,
    the page fetched, or the MCP tool's result as preformatted text."""
    content = call.result.get("content")
    if call.server_name is not None:
        return f"<pre>{html_text_block(mcp_result_text(call))}</pre>"
    if call.is_error:
        return ""
    if call.name == "web_search" and isinstance(content, list):
        items = "".join(f"<li>{html_link(str(r.get('title') or r.get('url') or '?'), str(r.get('url') or ''), dollar)}{_host(r)}</li>" for r in content if isinstance(r, dict))
        return f"<ol>{items}</ol>"
    fetched = _fetched(call)
    url = str(content.get("url") or "") if isinstance(content, dict) else ""
    text = fetched.get("text", "")
    preview = text[:FETCHED_PREVIEW] + ("…" if len(text) > FETCHED_PREVIEW else "")
    return f"<p>{html_link(str(fetched.get('title') or url), url, dollar)}: {html_text(preview, dollar)}</p>"


def markdown_bundle(call: ServerCall) -> dict[str, str]:
    """The notebook's display of a call: collapsed under its summary line."""
    line = summary(call)
    if call.server_name is not None:  # as a notebook function's result shows
        body = fenced(mcp_result_text(call))
        return {"text/markdown": f"<details><summary>{html_text(line)}</summary>\n\n{body}\n\n</details>", "text/plain": f"{line}: {mcp_result_text(call)}"}
    return {"text/markdown": f"<details><summary>{html_text(line)}</summary>{details_html(call)}</details>", "text/plain": _plain(call, line)}


def panel_html(call: ServerCall, *, typeset_math: bool = True) -> str:
    """The chat panel's display of a call (ipywidgets HTML), collapsed under its summary line."""
    dollar = "\\$" if typeset_math else "&#36;"
    return f"<details><summary>{html_text(summary(call), dollar)}</summary>{details_html(call, dollar)}</details>"


def mcp_result_text(call: ServerCall) -> str:
    """An MCP tool's result as text: its text blocks joined (anything else as JSON)."""
    content = call.result.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) if isinstance(b, dict) and b.get("type") == "text" else json.dumps(b) for b in content)
    return json.dumps(content)


def html_text_block(text: str) -> str:
    """Text for a ``<pre>``: escaped, its line breaks kept."""
    import html

    return html.escape(text).replace("$", "&#36;")


def _plain(call: ServerCall, line: str) -> str:
    content = call.result.get("content")
    if call.name == "web_search" and isinstance(content, list):
        return "\n".join([line, *(f"  {r.get('title', '')} <{r.get('url', '')}>" for r in content if isinstance(r, dict))])
    return line


def _fetched(call: ServerCall) -> dict[str, str]:
    """A fetched page's title and text (from the document its result holds)."""
    content = call.result.get("content")
    document = content.get("content") if isinstance(content, dict) else None
    if not isinstance(document, dict):
        return {}
    source = document.get("source")
    source = source if isinstance(source, dict) else {}
    text = source.get("data", "") if source.get("type") == "text" else f"({source.get('media_type', source.get('type', '?'))})"
    return {"title": str(document.get("title") or ""), "text": str(text)}


def _host(result: dict[str, Any]) -> str:
    try:
        host = urlsplit(str(result.get("url") or "")).hostname
    except ValueError:
        return ""
    return f" · {html_text(host)}" if host else ""
