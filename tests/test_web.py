"""The API's own tools in a real kernel against the stand-in: --web (searches and fetched pages
shown as they happen, web sources linked, searches counted and priced, pause_turn continued and
bounded), --mcp (the call shown, its token nowhere but in the request to the API), and every
block these produce kept and sent back byte for byte across a kernel restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment

from claude_magic.testing import StandIn
from claude_magic.testing.pdf import write_pdf

pytestmark = pytest.mark.kernel

KEY = "sk-ant-web-test-key-0b9c8d7e6f"
TOKEN = "mcp-secret-token-7f3a9c2e5b1d"
BOOKS = f"{{'books': {{'url': 'https://mcp.example.com/mcp', 'authorization_token': '{TOKEN}', 'allowed_tools': ['search_invoices']}}}}"


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> None:
    kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].session.conversation.clear()")
    server.reset()


def ask(kernel: Kernel, code: str) -> CellResult:
    result = kernel.run(code)
    assert result.status == "ok", result.outputs
    return result


def blocks_of(server: StandIn, request: int, role: str = "assistant") -> list[dict[str, Any]]:
    return [b for m in server.message_requests[request].messages if m["role"] == role for b in m["content"] if isinstance(m["content"], list)]


def test_web_offers_the_server_tools_shows_the_search_and_the_linked_sources_and_counts_searches(kernel: Kernel, server: StandIn) -> None:
    server.web.results = [("Oslo weather <today>", "https://weather.example.no/oslo?day=1&unit=c"), ("Met office", "https://met.example.no/")]
    result = ask(kernel, "%claude --web What is the weather in Oslo?")
    tools = server.message_requests[-1].body["tools"]
    assert tools == [{"type": "web_search_20260318", "name": "web_search", "max_uses": 5}, {"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 5}]
    before, search, after, footer = result.markdown()
    assert before.startswith("Let me look that up.")
    assert search.startswith("<details><summary>🔎 web search: “What is the weather in Oslo?” → 2 results</summary><ol>")
    assert '<a href="https://weather.example.no/oslo?day=1&amp;unit=c" target="_blank" rel="noopener noreferrer">Oslo weather &lt;today&gt;</a> · weather.example.no' in search
    assert "<sup>1</sup>" in after and "<sup>2</sup>" in after
    assert '<li><a href="https://weather.example.no/oslo?day=1&amp;unit=c" target="_blank" rel="noopener noreferrer">Oslo weather &lt;today&gt;</a> · “According to weather.example.no, the answer is 42.”</li>' in after
    assert "1 web search ≈ $0.0100" in result.displays()[-1]["data"]["text/plain"] and footer.startswith("<sub>")


def test_a_page_named_in_the_question_is_fetched_and_shown(kernel: Kernel, server: StandIn) -> None:
    server.web.pages["https://example.com/report.html"] = ("Annual report", "Profits doubled in 2026. Nothing else changed.")
    result = ask(kernel, "%claude --web --max-tokens 500 What does https://example.com/report.html say?")
    fetched = next(m for m in result.markdown() if "web fetch" in m)
    assert "🌐 web fetch: https://example.com/report.html → “Annual report”" in fetched
    assert "Profits doubled in 2026." in fetched
    assert "1 page fetched" in result.displays()[-1]["data"]["text/plain"]


def test_a_paused_answer_is_continued_with_its_blocks_sent_back_as_they_came(kernel: Kernel, server: StandIn) -> None:
    server.web.pause = 1
    ask(kernel, "%claude --web What is the weather in Oslo?")
    _, second = server.message_requests
    paused = second.messages[-1]
    assert paused["role"] == "assistant" and [b["type"] for b in paused["content"]] == ["text", "server_tool_use", "web_search_tool_result"]
    ask(kernel, "%claude Thanks. And tomorrow?")
    recorded = server.message_requests[-1].messages[1]["content"]
    assert recorded[:3] == paused["content"]  # the whole answer, in the order it came, sent back unchanged
    assert any(b.get("citations") for b in recorded[3:])


def test_continuing_is_bounded_by_max_tool_rounds(kernel: Kernel, server: StandIn) -> None:
    server.web.pause = 5
    ask(kernel, "%config ClaudeMagics.max_tool_rounds = 2")
    try:
        result = ask(kernel, "%claude --web What is the weather in Oslo?")
    finally:
        ask(kernel, "%config ClaudeMagics.max_tool_rounds = 8")
    assert len(server.message_requests) == 3
    footer = result.displays()[-1]["data"]["text/plain"]
    assert "paused by the API after the most continuations" in footer and "3 web searches" in footer


def test_an_mcp_call_shows_and_its_token_is_nowhere_but_in_the_request(kernel: Kernel, server: StandIn, home: Path, tmp_path: Path) -> None:
    ask(kernel, f"%config ClaudeMagics.mcp_servers = {BOOKS}")
    outputs = [ask(kernel, "%claude --mcp books Find the March invoices")]
    body, headers = server.message_requests[-1].body, server.message_requests[-1].headers
    assert body["mcp_servers"] == [{"type": "url", "url": "https://mcp.example.com/mcp", "name": "books", "authorization_token": TOKEN}]
    assert body["tools"] == [{"type": "mcp_toolset", "mcp_server_name": "books", "default_config": {"enabled": False}, "configs": {"search_invoices": {"enabled": True}}}]
    assert headers["anthropic-beta"] == "mcp-client-2025-11-20"
    call = outputs[0].markdown()[1]
    assert call.startswith("<details><summary>🔌 books.search_invoices(query=&#x27;Find the March invoices&#x27;) → result</summary>")
    assert "search_invoices on the books server found 3 matching records." in call
    outputs.append(ask(kernel, "%claude config"))
    outputs.append(ask(kernel, "%claude --dry-run --mcp books Again?"))
    outputs.append(ask(kernel, "%claude history"))
    outputs.append(ask(kernel, f"%claude export {tmp_path / 'talk.md'}"))
    outputs.append(ask(kernel, f"%claude export {tmp_path / 'talk.json'}"))
    server.fail(status=400, message=f"bad token {TOKEN}")
    outputs.append(kernel.run("%claude --mcp books Once more"))
    for output in outputs:
        assert TOKEN not in output.everything()
    assert "books: https://mcp.example.com/mcp, token " in outputs[1].markdown()[0]
    written = [p for p in [*home.rglob("*"), *tmp_path.rglob("*")] if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_an_mcp_server_not_declared_is_one_line(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude --mcp nowhere Hi")
    assert result.error is not None and "--mcp nowhere: no MCP server of that name in ClaudeMagics.mcp_servers" in result.error["traceback"][0]
    assert server.message_requests == []


def test_every_block_survives_a_restart_and_is_sent_back_byte_for_byte(server: StandIn, tmp_path: Path) -> None:
    """Documents with citations, a search and a fetch paused and continued, an MCP call: the
    follow-up a restarted kernel sends is the very request the first kernel sent."""
    report = tmp_path / "report.pdf"
    report.write_bytes(write_pdf(["Revenue grew 12% in March.", "Staff costs fell by 3% over the quarter."]))
    env = stand_in_environment(server.base_url, KEY, tmp_path / "home", str(tmp_path / "sources.ipynb"))
    cells = [
        ("c1", f"%claude --cite -a {report} What happened to staff costs?"),
        ("c2", "%claude --web What is the weather in Oslo?"),
        ("c3", "%claude --web --mcp books Read https://example.com/a.html and find the invoices"),
        ("c4", "%claude Summarise everything."),
    ]
    server.web.pause = 1

    def run(kernel: Kernel, cell: str, code: str) -> None:
        result = kernel.run(code, cell_id=cell)
        assert result.status == "ok", result.outputs

    with Kernel(env) as first:
        run(first, "setup", f"%load_ext claude_magic\n%config ClaudeMagics.mcp_servers = {BOOKS}")
        for cell, code in cells:
            run(first, cell, code)
    sent = server.message_requests[-1]
    kinds = {b["type"] for m in sent.messages for b in m["content"] if isinstance(m["content"], list)}
    assert {"document", "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "mcp_tool_use", "mcp_tool_result"} <= kinds
    assert any(b.get("citations") for m in sent.messages if m["role"] == "assistant" for b in m["content"])
    assert "encrypted_content" in json.dumps(sent.body)
    with Kernel(env) as second:  # Restart & Run: the last cell again
        run(second, "setup", f"%load_ext claude_magic\n%config ClaudeMagics.mcp_servers = {BOOKS}")
        run(second, cells[-1][0], cells[-1][1])
    again = server.message_requests[-1]
    assert again.digest == sent.digest and again.body == sent.body
