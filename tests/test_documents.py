"""Documents through a real kernel against the stand-in: PDFs and text files as document blocks,
the API's limits checked before sending, the dry run, and each document sent once a request."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from kernel_harness import CellResult, Kernel
from PIL import Image

from claude_magic.api.pdf import page_count
from claude_magic.testing import StandIn
from claude_magic.testing.pdf import page_texts, write_pdf

pytestmark = pytest.mark.kernel

KEY = "sk-ant-documents-test-key-7d3e1f"
PAGES = ["Quarterly report\nRevenue grew 12% in March.", "Costs\nStaff costs fell by 3% over the quarter.", "Outlook\nWe expect growth to slow in summer."]
SETUP = "from pathlib import Path\nfrom claude_magic.testing.pdf import write_pdf"


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> None:
    kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].session.conversation.clear()")
    server.reset()


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(write_pdf(PAGES))
    return path


def ask(kernel: Kernel, code: str) -> CellResult:
    result = kernel.run(code)
    assert result.status == "ok", result.outputs
    return result


def documents_sent(server: StandIn, request: int = -1) -> list[dict[str, Any]]:
    return [b for m in server.message_requests[request].messages for b in m["content"] if isinstance(m["content"], list) and b["type"] == "document"]


def test_pdf_and_unit_reading() -> None:
    pdf = write_pdf(PAGES, compress=True)
    assert page_count(pdf) == 3 and page_texts(pdf) == PAGES
    buffer = io.BytesIO()
    images = [Image.new("RGB", (64, 64), colour) for colour in ("red", "green", "blue", "white")]
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:])
    assert page_count(buffer.getvalue()) == 4 and page_texts(buffer.getvalue()) == ["", "", "", ""]


def test_a_pdf_named_on_the_line_is_sent_as_a_document_titled_with_its_name(kernel: Kernel, server: StandIn, report: Path) -> None:
    result = ask(kernel, f"%claude -a {report} What does the report say?")
    (document,) = documents_sent(server)
    assert document["title"] == "report.pdf"
    assert document["source"]["media_type"] == "application/pdf"
    assert base64.b64decode(document["source"]["data"]) == report.read_bytes()
    assert "citations" not in document
    assert "document 1: “report.pdf”, PDF, 3 pages" in result.markdown()[0]


@pytest.mark.parametrize(
    ("setup", "name", "kind"),
    [
        ("doc = Path({path!r})", "doc", "PDF"),
        ("doc = Path({path!r}).read_bytes()", "doc", "PDF"),
        ("Path({text!r}).write_text('city,sales\\nOslo,12\\n'); doc = Path({text!r})", "doc", "text"),
        ("doc = {text!r}; Path(doc).write_text('# Notes\\nAll good.')", "doc", "text"),
    ],
)
def test_paths_bytes_and_text_files_become_documents(kernel: Kernel, server: StandIn, report: Path, setup: str, name: str, kind: str) -> None:
    text = str(report.with_name("sales.csv" if "city" in setup else "notes.md"))
    ask(kernel, setup.format(path=str(report), text=text))
    ask(kernel, f"%claude -a {name} Summarise it.")
    (document,) = documents_sent(server)
    if kind == "PDF":
        assert base64.b64decode(document["source"]["data"]) == report.read_bytes()
        assert document["title"] == ("report.pdf" if "read_bytes" not in setup else "doc")
    else:
        assert document["source"] == {"type": "text", "media_type": "text/plain", "data": Path(text).read_text()}
        assert document["title"] == Path(text).name


def test_an_https_url_is_a_url_source(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "%claude -a https://example.org/papers/annual%20report.pdf What is in it?")
    (document,) = documents_sent(server)
    assert document == {"type": "document", "source": {"type": "url", "url": "https://example.org/papers/annual%20report.pdf"}, "title": "annual report.pdf"}


def test_a_pdf_over_the_page_limit_is_refused_before_sending(kernel: Kernel, server: StandIn, tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    big.write_bytes(write_pdf([f"page {n}" for n in range(101)]))
    result = kernel.run(f"%claude -a {big} Summarise it.")
    assert result.error is not None
    assert "can't attach big.pdf: it has 101 pages, 1 more than the 100 the API takes in a request" in result.error["traceback"][0]
    assert len(result.error["traceback"]) == 1  # one line, no traceback
    assert server.message_requests == []


def test_pages_of_several_documents_count_together(kernel: Kernel, server: StandIn, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.pdf").write_bytes(write_pdf([f"{name} {n}" for n in range(60)]))
    result = kernel.run(f"%claude -a {tmp_path / 'a.pdf'},{tmp_path / 'b.pdf'} Compare them.")
    assert result.error is not None and "120 pages together, 20 more than the 100" in result.error["traceback"][0]
    assert server.message_requests == []


def test_an_encrypted_pdf_is_refused(kernel: Kernel, server: StandIn, tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(write_pdf(["secret"]).replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt 9 0 R"))
    result = kernel.run(f"%claude -a {locked} Read it.")
    assert result.error is not None and "locked.pdf: it is encrypted or password-protected" in result.error["traceback"][0]
    assert server.message_requests == []


def test_dry_run_shows_pages_size_and_tokens_and_no_base64(kernel: Kernel, server: StandIn, report: Path) -> None:
    result = ask(kernel, f"%claude --dry-run -a {report} What does it say?")
    summary, body = result.markdown()[0], result.markdown()[-1]
    size = report.stat().st_size
    assert f"| PDF file report.pdf | 3 pages, {size:,} bytes | 6,000 |" in summary
    assert "characters of base64 not shown" in body and base64.b64encode(report.read_bytes()).decode()[:40] not in body
    assert server.requests == []


def test_a_document_attached_again_is_sent_once_a_request(kernel: Kernel, server: StandIn, report: Path) -> None:
    ask(kernel, f"%claude -a {report} What does it say?")
    ask(kernel, f"%claude -a {report} And the costs?")
    documents = documents_sent(server)
    assert len(documents) == 1
    question = server.message_requests[-1].messages[-1]["content"]
    assert {"type": "text", "text": "(the same document as one earlier in this conversation: report.pdf)"} in question


# --- citations -----------------------------------------------------------------------------------


def sent_citations(server: StandIn, request: int = -1) -> list[dict[str, Any]]:
    """The citations the stand-in streamed for a request: what its answer carries, made again from
    the request it recorded (the stand-in's answers are a function of the request)."""
    from claude_magic.testing.sources import cited_answer

    parts = cited_answer(server.message_requests[request].body) or []
    return [c for part in parts for c in part.citations]


def test_cite_shows_markers_and_sources_that_match_the_citations_sent(kernel: Kernel, server: StandIn, report: Path) -> None:
    result = ask(kernel, f"%claude --cite -a {report} What happened to staff costs?")
    (document,) = documents_sent(server)
    assert document["citations"] == {"enabled": True}
    (citation,) = sent_citations(server)
    assert (citation["start_page_number"], citation["cited_text"]) == (2, "Staff costs fell by 3% over the quarter.")
    shown = result.markdown()[0]
    assert "Staff costs fell by 3% over the quarter.<sup>1</sup>" in shown
    assert "<li><b>report.pdf</b> · page 2 · “Staff costs fell by 3% over the quarter.”</li>" in shown
    plain = result.displays()[0]["data"]["text/plain"]
    assert "quarter.[1] " in plain and "[1] report.pdf, page 2: “Staff costs fell by 3% over the quarter.”" in plain


def test_a_cited_answer_is_sent_back_with_its_citations_under_both_api_versions(kernel: Kernel, server: StandIn, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(text := "# Notes\nThe sky was blue all week. Sales rose in Oslo.\n")
    start = text.index("Sales")
    ask(kernel, "%config ClaudeMagics.api_version = '2026-10-21'")
    try:
        first = ask(kernel, f"%claude --cite -a {notes} Where did sales rise?")
        assert f"<b>notes.md</b> · characters {start}–{start + 19} · “Sales rose in Oslo.”" in first.markdown()[0]
        ask(kernel, "%claude And the weather?")
    finally:
        ask(kernel, "%config ClaudeMagics.api_version = '2023-06-01'")
    answer = server.message_requests[-1].messages[1]
    cited = [b for b in answer["content"] if b.get("citations")]
    assert cited == [{"type": "text", "text": "Sales rose in Oslo. ", "citations": sent_citations(server, 0)}]
    assert server.message_requests[-1].headers["anthropic-version"] == "2026-10-21"


def test_cite_where_the_conversation_holds_uncited_documents_is_refused_and_new_ones_follow_it(kernel: Kernel, server: StandIn, report: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Plain notes.")
    ask(kernel, f"%claude -a {report} What is it?")
    refused = kernel.run(f"%claude --cite -a {notes} And these?")
    assert refused.error is not None and "--cite: this conversation holds 1 document sent without citations" in refused.error["traceback"][0]
    assert len(server.message_requests) == 1
    ask(kernel, "%claude --new --cite -a " + str(report) + " Again?")
    ask(kernel, f"%claude -a {notes} And these?")  # a cited conversation: the new document is cited too
    assert [d.get("citations") for d in documents_sent(server)] == [{"enabled": True}] * 2


def test_export_to_markdown_renders_sources_as_footnotes(kernel: Kernel, server: StandIn, report: Path, tmp_path: Path) -> None:
    ask(kernel, f"%claude --cite -a {report} What happened to staff costs?")
    ask(kernel, "%claude And revenue growth in March?")
    target = tmp_path / "talk.md"
    ask(kernel, f"%claude export {target}")
    exported = target.read_text()
    assert "*[document: report.pdf]*" in exported
    assert "Staff costs fell by 3% over the quarter.[^1]" in exported
    assert "Revenue grew 12% in March.[^2]" in exported
    assert "[^1]: report.pdf, page 2: “Staff costs fell by 3% over the quarter.”" in exported
    assert "[^2]: report.pdf, page 1: “Revenue grew 12% in March.”" in exported


def test_cite_with_nothing_to_cite_says_so(kernel: Kernel, server: StandIn) -> None:
    result = ask(kernel, "%claude --cite What is a p-value?")
    assert "--cite applies to documents" in result.stderr
    assert len(server.message_requests) == 1
