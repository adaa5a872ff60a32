"""What the stand-in answers when a request offers the API's own tools: web search, web fetch,
and the tools of remote MCP servers (the MCP connector). The stand-in plays the server that
runs them, deterministically, as :class:`WebScript` says:

* ``web_fetch`` offered and an ``https://`` address in the question: the page is fetched (its
  title and text from :attr:`WebScript.pages`, else made up from the address);
* otherwise ``web_search`` offered: the question is searched, the results those of
  :attr:`WebScript.results`, else three made up from the query;
* each MCP server offered (an ``mcp_toolset``): its first allowed tool is called with the question.

The answer holds each call (``server_tool_use``, ``mcp_tool_use``, its input streamed) and its
result (complete, with ``encrypted_content`` the stand-in can check when it comes back), then
text citing what was found: ``web_search_result_location`` citations for search results, a
``char_location`` into a fetched page when the fetch tool has citations on. While
:attr:`WebScript.pause` says so, the answer stops after the results with ``pause_turn``; a
request that ends with that assistant message (the client continuing) gets the rest of it. Usage reports
``server_tool_use`` (searches and fetches).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .answers import STAND_IN_NOTE, Part, question_of

WEB_SEARCH_TOOLS = ("web_search_20250305", "web_search_20260209", "web_search_20260318")
WEB_FETCH_TOOLS = ("web_fetch_20250910", "web_fetch_20260209", "web_fetch_20260309", "web_fetch_20260318")
SIGNATURE_PREFIX = "enc_standin_"
_URL = re.compile(r"https://[^\s<>\"')\]]+")


@dataclass
class WebScript:
    """What the stand-in's web holds, and whether its answers pause."""

    results: list[tuple[str, str]] | None = None
    """``(title, url)`` of each search's results; None: three made up from the query."""
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    """``url → (title, text)``: what a fetch of that address returns, and what a search result cites."""
    pause: int = 0
    """How many of the next answers that run server tools stop after their results with
    ``pause_turn`` (a continuation with pauses left runs its calls again, and pauses again)."""
    mcp_results: dict[str, str] = field(default_factory=dict)
    """``server name → text`` an MCP tool call returns; else a line naming the server and the tool."""

    def page(self, url: str) -> tuple[str, str]:
        host = urlsplit(url).hostname or "the web"
        return self.pages.get(url, (f"A page on {host}", f"According to {host}, the answer is 42. The stand-in wrote this page."))


@dataclass(frozen=True)
class ServerAnswer:
    parts: list[Part]
    usage: dict[str, Any]
    stop_reason: str | None = None


def signature(*values: str) -> str:
    """The ``encrypted_content`` (or ``encrypted_index``) of what the stand-in found: a hash of it,
    so a block sent back changed is told apart from one sent back as it came."""
    return SIGNATURE_PREFIX + hashlib.sha256("\x00".join(values).encode()).hexdigest()[:40]


def server_answer(body: dict[str, Any], web: WebScript, request_id: str) -> ServerAnswer | None:
    """The answer to a request offering server tools (None when it offers none, or answers a
    notebook function's results)."""
    tools = body.get("tools") or []
    search = next((t for t in tools if t.get("type") in WEB_SEARCH_TOOLS), None)
    fetch = next((t for t in tools if t.get("type") in WEB_FETCH_TOOLS), None)
    toolsets = [t for t in tools if t.get("type") == "mcp_toolset"]
    if not (search or fetch or toolsets):
        return None
    messages = body["messages"]
    continuing = messages[-1].get("role") == "assistant"  # a paused answer, sent back to go on
    if continuing and web.pause <= 0:
        return ServerAnswer(_conclusion(messages[-1].get("content") or [], web, fetch), {})
    question = question_of(messages[-2 if continuing and len(messages) > 1 else -1].get("content", ""))
    if question == "(tool results)":
        return None
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    url = _URL.search(question)
    if fetch and url:
        calls.append(_fetched(url[0].rstrip(".,;:"), web, request_id))
    elif search:
        calls.append(_searched(" ".join(question.split())[:120], web, request_id))
    calls += [_mcp_call(toolset, body, question, web, request_id) for toolset in toolsets]
    usage = {"server_tool_use": {"web_search_requests": sum(c["name"] == "web_search" for c, _ in calls), "web_fetch_requests": sum(c["name"] == "web_fetch" for c, _ in calls)}}
    parts = ([] if continuing else [Part("Let me look that up.")]) + [Part(block=block) for pair in calls for block in pair]
    if web.pause > 0:
        web.pause -= 1
        return ServerAnswer(parts, usage, "pause_turn")
    return ServerAnswer(parts + _conclusion([b for pair in calls for b in pair], web, fetch), usage)


def _searched(query: str, web: WebScript, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    slug = re.sub(r"[^a-z0-9]+", "-", query.lower()).strip("-")[:40] or "query"
    found = web.results if web.results is not None else [(f"Result {n} for “{query}”", f"https://example.org/{slug}/{n}") for n in (1, 2, 3)]
    call = {"type": "server_tool_use", "id": f"srvtoolu_{request_id}_search", "name": "web_search", "input": {"query": query}}
    results = [{"type": "web_search_result", "url": url, "title": title, "encrypted_content": signature(url, title), "page_age": "2 days ago"} for title, url in found]
    return call, {"type": "web_search_tool_result", "tool_use_id": call["id"], "content": results}


def _fetched(url: str, web: WebScript, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    title, text = web.page(url)
    call = {"type": "server_tool_use", "id": f"srvtoolu_{request_id}_fetch", "name": "web_fetch", "input": {"url": url}}
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}, "title": title}
    content = {"type": "web_fetch_result", "url": url, "retrieved_at": "2026-11-20T12:00:00Z", "content": document}
    return call, {"type": "web_fetch_tool_result", "tool_use_id": call["id"], "content": content}


def _mcp_call(toolset: dict[str, Any], body: dict[str, Any], question: str, web: WebScript, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    name = str(toolset.get("mcp_server_name"))
    enabled = [tool for tool, config in (toolset.get("configs") or {}).items() if (config or {}).get("enabled", True)]
    tool = enabled[0] if enabled else "search"
    call = {"type": "mcp_tool_use", "id": f"mcptoolu_{request_id}_{name}", "name": tool, "server_name": name, "input": {"query": " ".join(question.split())[:120]}}
    text = web.mcp_results.get(name, f"{tool} on the {name} server found 3 matching records.")
    return call, {"type": "mcp_tool_result", "tool_use_id": call["id"], "is_error": False, "content": [{"type": "text", "text": text}]}


def _conclusion(blocks: list[dict[str, Any]], web: WebScript, fetch: dict[str, Any] | None) -> list[Part]:
    """The text after the calls: each finding said, citing where it comes from."""
    parts: list[Part] = []
    for block in blocks:
        if block.get("type") == "web_search_tool_result" and isinstance(block.get("content"), list):
            parts += [_cited_result(result, web) for result in block["content"][:2]]
        elif block.get("type") == "web_fetch_tool_result":
            parts.append(_cited_page(block, (fetch or {}).get("citations", {}).get("enabled", False)))
        elif block.get("type") == "mcp_tool_result":
            said = " ".join(str(b.get("text", "")) for b in block.get("content") or [] if isinstance(b, dict))
            parts.append(Part(f"The MCP server answered: {said} "))
    return [*parts, Part(f"\n\n{STAND_IN_NOTE}")]


def _cited_result(result: dict[str, Any], web: WebScript) -> Part:
    url, title = str(result.get("url")), str(result.get("title"))
    cited = _first_sentence(web.page(url)[1])
    citation = {"type": "web_search_result_location", "cited_text": cited, "url": url, "title": title, "encrypted_index": signature(url, cited)}
    return Part(f"{cited} ", (citation,))


def _cited_page(block: dict[str, Any], cite: bool) -> Part:
    document = (block.get("content") or {}).get("content") or {}
    text = str((document.get("source") or {}).get("data", ""))
    cited = _first_sentence(text)
    if not cite:
        return Part(f"The page says: {cited} ")
    start = max(text.find(cited), 0)
    citation = {"type": "char_location", "cited_text": cited, "document_index": 0, "document_title": document.get("title"), "start_char_index": start, "end_char_index": start + len(cited)}
    return Part(f"{cited} ", (citation,))


def _first_sentence(text: str) -> str:
    match = re.match(r"\s*(.*?[.!?])(?=\s|$)", text, re.DOTALL)
    return " ".join((match[1] if match else text).split())


def check_sent_back(messages: list[dict[str, Any]]) -> str | None:
    """Why a search result the stand-in made, sent back, is not as it came (None: all are)."""
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "web_search_tool_result" and isinstance(block.get("content"), list):
                for k, result in enumerate(block["content"]):
                    sealed = str(result.get("encrypted_content", ""))
                    if sealed.startswith(SIGNATURE_PREFIX) and sealed != signature(str(result.get("url")), str(result.get("title"))):
                        return f"messages.{i}.content.{j}.content.{k}.encrypted_content: does not match the result it was sent with"
    return None
