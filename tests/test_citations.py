"""Citations as the reader sees them: numbered markers at the cited passages, the sources under
the answer, and everything a model or a server put in a citation shown as text, never markup."""

from __future__ import annotations

import io

import pytest
from test_safe_markdown import ATTACKS, Page, problems, shown_text

from claude_magic.core.engine import cited_offsets
from claude_magic.core.server_tools import ServerCall
from claude_magic.ui import server_calls
from claude_magic.ui.citations import Source, Sources, plain_text, safe_url
from claude_magic.ui.render import TerminalAnswer, markdown_bundle
from claude_magic.ui.safe_html import cited_html

OWN_TAGS = frozenset({"sup", "div", "b", "details", "summary"})


def page(cited: str, number: int, title: str = "report.pdf") -> dict[str, object]:
    return {"type": "page_location", "cited_text": cited, "document_index": 0, "document_title": title, "start_page_number": number, "end_page_number": number + 1}


def web(url: str, title: str | None, cited: str = "It rained.") -> dict[str, object]:
    return {"type": "web_search_result_location", "url": url, "title": title, "cited_text": cited, "encrypted_index": "Eo8B"}


def test_sources_are_numbered_as_first_cited_and_a_passage_cited_again_keeps_its_number() -> None:
    sources = Sources([(page("A.", 1), 2), (page("B.", 2), 2), (page("A.", 1), 5)])
    assert [s.where for s in sources.sources] == ["page 1", "page 2"]
    assert sources.markers == [(2, [1, 2]), (5, [1])]
    assert Source.of({**page("x", 2), "end_page_number": 5}).where == "pages 2–4"
    chars = {"type": "char_location", "cited_text": "x", "document_index": 1, "document_title": None, "start_char_index": 3, "end_char_index": 40}
    assert Source.of(chars) == Source("document 2", "characters 3–40", "x")


def test_markers_go_where_the_cited_passages_end_and_sources_under_the_answer() -> None:
    content = [
        {"type": "text", "text": "Intro. "},
        {"type": "text", "text": "Revenue grew.", "citations": [page("Revenue grew 12%.", 1)]},
        {"type": "text", "text": " Costs fell $5 and $10.", "citations": [page("Costs fell.", 2), page("Revenue grew 12%.", 1)]},
    ]
    text = "".join(b["text"] for b in content)
    bundle = markdown_bundle(text, sources=Sources(cited_offsets(content)))
    assert bundle["text/markdown"].startswith("Intro. Revenue grew.<sup>1</sup> Costs fell <span>&#36;</span>5 and <span>&#36;</span>10.<sup>2,1</sup>\n\n<div")
    assert "<li><b>report.pdf</b> · page 2 · “Costs fell.”</li>" in bundle["text/markdown"]
    assert bundle["text/plain"].startswith("Intro. Revenue grew.[1] Costs fell $5 and $10.[2,1]\n\nSources:\n[1] report.pdf, page 1: “Revenue grew 12%.”")
    assert problems(bundle["text/markdown"], OWN_TAGS) == []


def test_long_cited_text_is_collapsed_under_its_beginning() -> None:
    long = "word " * 100
    shown = Sources([(page(long, 3), 0)]).html()
    assert shown.count("<details>") == 1 and "<summary><b>report.pdf</b> · page 3 · “word word" in shown
    assert Sources([(page("short", 3), 0)]).html().count("<details>") == 0


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_in_a_citation_can_run(attack: str) -> None:
    sources = Sources([(page(attack, 1, title=attack), 4), (web(f"https://x.org/{attack}", attack, attack), 4), (web(attack, attack), 4)])
    markdown = markdown_bundle(f"{attack} and more", sources=sources)["text/markdown"]
    assert problems(markdown, OWN_TAGS) == []
    panel = cited_html(f"{attack} and more", sources)
    assert Page(panel).problems(OWN_TAGS) == []


def test_cited_text_and_titles_show_as_written() -> None:
    attack = '<img src=x onerror="window.__claude_xss_40=1"> $x"$ \\(y\\) *z*'
    markdown = markdown_bundle("Claim.", sources=Sources([(page(attack, 1, title=attack), 6)]))["text/markdown"]
    assert attack.replace("\\", "") in shown_text(markdown).replace("\\", "")  # the dollar's escape is MathJax's to remove


def test_web_sources_link_to_http_urls_only_percent_encoded() -> None:
    assert safe_url('https://x.org/a b"c$<d>') == "https://x.org/a%20b%22c%24%3Cd%3E"
    for unsafe in ("javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "https://[x", "//x.org/a", "http:/x"):
        assert safe_url(unsafe) is None, unsafe
    shown = Sources([(web("https://x.org/p?a=1&b=2", "Page <b>"), 0), (web("javascript:alert(1)", "Bad"), 0)]).html()
    links = [attributes for tag, attributes in Page(shown).elements if tag == "a"]
    assert links == [{"href": "https://x.org/p?a=1&b=2", "target": "_blank", "rel": "noopener noreferrer"}]
    assert "Page &lt;b&gt;" in shown and "<b>Bad</b> (javascript:alert(1))" in shown


def test_the_panel_writes_a_dollar_for_mathjax_or_plainly() -> None:
    sources = Sources([(page("costs $5", 1), 6)])
    assert "costs \\$5" in cited_html("Claim.", sources)
    assert "costs &#36;5" in cited_html("Claim.", sources, typeset_math=False)
    assert cited_html("Claim.", sources).startswith("<p>Claim.<sup>1</sup></p>")


def test_the_terminal_marks_passages_as_they_stream_and_lists_sources_at_the_end() -> None:
    out = io.StringIO()
    terminal = TerminalAnswer(out)
    terminal.feed("Revenue grew.")
    terminal.feed_citation(page("Revenue grew 12%.", 1), 13)
    terminal.feed(" Done.")
    terminal.finish("Revenue grew. Done.")
    assert out.getvalue() == "Revenue grew. [1] Done.\n\nSources:\n[1] report.pdf, page 1: “Revenue grew 12%.”\n"
    assert plain_text("No citations.", Sources()) == "No citations."


# --- calls the API ran itself ----------------------------------------------------------------------


def search_call(query: str, results: list[tuple[str, str]]) -> ServerCall:
    call = {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": query}}
    content = [{"type": "web_search_result", "title": title, "url": url, "encrypted_content": "x"} for title, url in results]
    return ServerCall(call, {"type": "web_search_tool_result", "tool_use_id": "s1", "content": content})


def fetch_call(url: str, title: str, text: str) -> ServerCall:
    call = {"type": "server_tool_use", "id": "f1", "name": "web_fetch", "input": {"url": url}}
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}, "title": title}
    return ServerCall(call, {"type": "web_fetch_tool_result", "tool_use_id": "f1", "content": {"type": "web_fetch_result", "url": url, "content": document}})


def mcp_call(server: str, tool: str, argument: str, result: str) -> ServerCall:
    call = {"type": "mcp_tool_use", "id": "m1", "name": tool, "server_name": server, "input": {"q\n\n" + argument: argument}}
    return ServerCall(call, {"type": "mcp_tool_result", "tool_use_id": "m1", "is_error": False, "content": [{"type": "text", "text": result}]})


@pytest.mark.parametrize("attack", ATTACKS)
def test_nothing_in_a_search_a_fetched_page_or_an_mcp_call_can_run(attack: str) -> None:
    calls = [
        search_call(attack, [(attack, f"https://x.org/{attack}"), (attack, attack)]),
        fetch_call(f"https://x.org/{attack}", attack, attack),
        fetch_call(attack, attack, attack),
        mcp_call(attack, attack, attack, f"{attack}\n```\n{attack}"),
    ]
    for call in calls:
        assert problems(server_calls.markdown_bundle(call)["text/markdown"], OWN_TAGS) == [], call
        assert Page(server_calls.panel_html(call)).problems(OWN_TAGS | {"pre"}) == [], call


def test_a_search_shows_its_query_and_results_linked_and_an_error_says_its_code() -> None:
    shown = server_calls.markdown_bundle(search_call("oslo $5 weather", [("Weather <b>", "https://w.example/a?b=1&c=2"), ("Bad", "javascript:alert(1)")]))
    assert shown["text/markdown"].startswith("<details><summary>🔎 web search: “oslo \\$5 weather” → 2 results</summary><ol>")
    assert '<li><a href="https://w.example/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">Weather &lt;b&gt;</a> · w.example</li>' in shown["text/markdown"]
    assert "<li><b>Bad</b> (javascript:alert(1))</li>" in shown["text/markdown"]
    assert shown["text/plain"] == "🔎 web search: “oslo $5 weather” → 2 results\n  Weather <b> <https://w.example/a?b=1&c=2>\n  Bad <javascript:alert(1)>"
    failed = ServerCall(search_call("q", []).call, {"type": "web_search_tool_result", "tool_use_id": "s1", "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}})
    assert server_calls.summary(failed) == "🔎 web search: “q” → error: max_uses_exceeded"


def test_an_mcp_result_is_a_fenced_block_no_line_of_it_can_close() -> None:
    shown = server_calls.markdown_bundle(mcp_call("books", "find", "x", "```\n<img src=x onerror=alert(1)>"))["text/markdown"]
    assert "\n````\n```\n<img src=x onerror=alert(1)>\n````\n" in shown
