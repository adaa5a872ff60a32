"""One prompt over many rows, in real kernels against the stand-in: ``claude_magic.map`` and
``%%claude --each``, typed results, failures per row, interrupts and re-runs, the confirmation,
pacing under the rate limits, and what the stand-in saw."""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment

from claude_magic.core.rows import INTERRUPTED
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-rows-test-key-7c8d9e0f1a"
SETUP = """
import claude_magic, pandas as pd
from typing import Literal
from pydantic import BaseModel, Field

class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    summary: str
    length: int = Field(ge=0)

reviews = pd.DataFrame(
    {"review": [f"review {i}: {'great' if i % 3 else 'awful'} phone" for i in range(200)], "stars": [i % 5 + 1 for i in range(200)]},
    index=[f"r{(i * 37) % 200}" for i in range(200)],
)
"""


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> Iterator[None]:
    kernel.run("%config ClaudeMagics.confirm_above_usd = None\n%config ClaudeMagics.budget_usd = None\n%config ClaudeMagics.rate_limits = 'pro'")
    server.reset()
    yield
    server.reset()


def value(kernel: Kernel, expression: str) -> object:
    """A Python literal the kernel prints for ``expression``."""
    result = kernel.run(f"print(repr({expression}))")
    assert result.status == "ok", result.outputs
    try:
        return ast.literal_eval(result.stdout.strip())
    except ValueError:
        raise AssertionError(f"{expression} printed {result.stdout!r}") from None


def one_line(result: CellResult) -> str:
    """The one line a refusal shows (no traceback, no key)."""
    error = result.error
    assert error is not None and error["ename"] == "ClaudeMagicError", result.outputs
    assert len(error["traceback"]) == 1 and KEY not in result.everything()
    return str(error["evalue"])


def test_200_rows_with_a_schema_land_as_typed_columns_in_input_order(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%config ClaudeMagics.rate_limits = '60000/100000000/100000000'")  # a request every millisecond at most
    run = kernel.run("result = claude_magic.map('Classify this review: {review}', reviews, schema=Sentiment, model='claude-haiku-5-5')", timeout=120)
    assert run.status == "ok", run.outputs
    assert len(server.message_requests) == 200 and server.max_concurrent > 1
    assert {r.prompts()[0] for r in server.message_requests} == {f"Classify this review: review {i}: {'great' if i % 3 else 'awful'} phone" for i in range(200)}
    form = server.message_requests[0].body["output_config"]["format"]
    assert form["type"] == "json_schema" and form["schema"]["properties"]["length"] == {"title": "Length", "type": "integer", "description": "{minimum: 0}"}
    assert value(kernel, "list(result.columns)") == ["sentiment", "summary", "length", "error"]
    assert value(kernel, "list(result.index) == list(reviews.index)") is True
    assert value(kernel, "bool((result.summary == 'Classify this review: ' + reviews.review).all())") is True  # each row its own answer
    assert value(kernel, "bool((result.length == result.summary.str.len()).all()) and str(result.length.dtype)") == "int64"
    assert value(kernel, "set(result.sentiment)") == {"positive", "negative", "mixed"} and value(kernel, "bool(result.error.isna().all())") is True
    final = [o for o in run.displays() if "text/html" in o["data"]][-1]["data"]
    assert '<progress value="200" max="200"' in final["text/html"] and final["text/plain"].startswith("claude: 200/200 rows")
    again = kernel.run("again = claude_magic.map('Classify this review: {review}', reviews, schema=Sentiment, model='claude-haiku-5-5')")
    assert len(server.message_requests) == 200 and "all 200 rows were answered before" in again.stdout  # nothing sent twice
    assert value(kernel, "again.equals(result)") is True


def test_the_cell_form_asks_each_row_and_keeps_the_result(kernel: Kernel, server: StandIn) -> None:
    kernel.run("top = reviews.head(3)")
    run = kernel.run("%%claude --each top --schema Sentiment -o labels -m claude-haiku-5-5\nClassify: {review} ({stars} stars) {\"keep\": \"these braces\"}")
    assert run.status == "ok", run.outputs
    assert sorted(r.prompts()[0] for r in server.message_requests) == sorted(
        f'Classify: review {i}: {"great" if i % 3 else "awful"} phone ({i % 5 + 1} stars) {{"keep": "these braces"}}' for i in range(3)
    )
    assert value(kernel, "list(labels.index) == list(reviews.index[:3]) and list(labels.columns)") == ["sentiment", "summary", "length", "error"]
    assert any("<table" in o["data"].get("text/html", "") for o in run.displays())  # the result is shown under the cell


def test_a_series_or_a_list_fills_item_and_duplicates_are_asked_once(kernel: Kernel, server: StandIn) -> None:
    assert value(kernel, "[r['answer'].split('”')[0] for r in claude_magic.map('Define {item}', ['join', 'merge', 'join'])]") == [
        "**Stand-in answer** to: “Define join",
        "**Stand-in answer** to: “Define merge",
        "**Stand-in answer** to: “Define join",
    ]
    assert len(server.message_requests) == 2
    assert value(kernel, "list(claude_magic.map('Say {review} and {item}', reviews.review.head(2)).index) == list(reviews.index[:2])") is True


def test_a_failing_row_has_its_error_and_the_others_succeed(kernel: Kernel, server: StandIn) -> None:
    server.fail(status=400, message="this row is refused")
    server.reply(text="not JSON at all")
    run = kernel.run("result = claude_magic.map('Classify this review: {review}', reviews.head(12), schema=Sentiment)")
    assert run.status == "ok" and "2 of 12 rows have no answer: the error column says why" in run.stderr
    errors = value(kernel, "sorted(result.error.dropna())")
    assert len(errors) == 2 and "the API refused the request (400 this row is refused)" in errors[0]
    assert errors[1].startswith("the answer is not JSON") and value(kernel, "int(result.sentiment.notna().sum())") == 10
    assert len(server.message_requests) == 12


def test_an_interrupt_returns_what_was_answered_and_a_rerun_sends_only_the_rest(server: StandIn, tmp_path: Path) -> None:
    cell = "result = claude_magic.map('Summarise {item} [[delay=0.05]]', pd.Series([f'text {i}' for i in range(40)]), concurrency=4, yes=True)"
    with Kernel(stand_in_environment(server.base_url, KEY, tmp_path)) as k:
        k.run(SETUP)
        msg_id = k.submit(cell)
        deadline = time.monotonic() + 30
        while sum(1 for r in server.message_requests if r.ended is not None) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        finished = sum(1 for r in server.message_requests if r.ended is not None)
        k.interrupt()
        interrupted = k.collect(msg_id, timeout=30)
        assert interrupted.status == "ok", interrupted.outputs
        assert "interrupted:" in interrupted.stdout and "run it again to send only the" in interrupted.stdout
        unanswered = value(k, f"int((result.error == {INTERRUPTED!r}).sum())")
        answered = value(k, "int(result.answer.notna().sum())")
        # every answer the stand-in had finished is kept, but those still on their way to the kernel
        # (at most one a worker) when the interrupt came
        assert finished - 4 <= answered < 40 and answered + unanswered == 40, (finished, answered)
        first_run = len(server.message_requests)
        k.run(cell, timeout=60)
        assert len(server.message_requests) - first_run == unanswered  # only the rest was sent
        assert value(k, "bool(result.error.isna().all())") is True
    with Kernel(stand_in_environment(server.base_url, KEY, tmp_path)) as restarted:  # a new kernel, the same home
        restarted.run(SETUP)
        before = len(server.message_requests)
        assert restarted.run(cell).status == "ok" and len(server.message_requests) == before  # every row kept


def test_the_confirmation_blocks_a_job_over_the_threshold_until_confirmed(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%config ClaudeMagics.confirm_above_usd = 0.0001")
    cell = "result = claude_magic.map('Classify this review: {review}', reviews.head(30), model='claude-opus-5-5')"
    prompt, declined = kernel.run_answering(cell, "n")
    assert "this job of 30 rows, asked row by row, could cost up to $" in prompt and "8,192 tokens of output a row at most" in prompt
    assert prompt.endswith("Send it? [y/N] ") and one_line(declined) == "not sent: declined"
    assert not server.message_requests and {r.path for r in server.requests if r.method == "POST"} == {"/v1/messages/count_tokens"}
    assert "this frontend can't ask: nothing was sent (pass yes=True to send it)" in one_line(kernel.run(cell))
    assert not server.message_requests
    _, accepted = kernel.run_answering(cell, "y")
    assert accepted.status == "ok" and len(server.message_requests) == 30


@pytest.mark.parametrize(
    ("cell", "line"),
    [
        pytest.param("claude_magic.map('Classify {revew}', reviews)", "{revew} names no column of the rows (their columns: review, stars) and no variable; nothing was sent", id="unknown-placeholder"),
        pytest.param("%%claude --each reviews\nClassify {revew}", "{revew} names no column of the rows (their columns: review, stars) and no variable", id="cell-unknown"),
        pytest.param(
            "class Loose(BaseModel):\n    counts: dict[str, int]\nclaude_magic.map('Count {review}', reviews, schema=Loose)",
            "the field 'counts' is an object with free-form keys (a dict), which structured outputs can't take",
            id="schema",
        ),
        pytest.param("claude_magic.map('Classify {review}', reviews, attach=['photo'])", "attach='photo' names no column of the rows", id="attach"),
        pytest.param("claude_magic.map('Say {item}', 'one string')", "the rows are one str", id="string"),
    ],
)
def test_bad_input_is_one_line_and_sends_nothing(kernel: Kernel, server: StandIn, cell: str, line: str) -> None:
    assert line in one_line(kernel.run(cell))
    assert not server.requests or not server.message_requests


def test_an_empty_input_returns_an_empty_result(kernel: Kernel, server: StandIn) -> None:
    assert value(kernel, "claude_magic.map('Say {item}', [])") == []
    assert value(kernel, "list(claude_magic.map('Say {review}', reviews.head(0), schema=Sentiment).columns)") == ["sentiment", "summary", "length", "error"]
    assert not server.message_requests


def test_a_model_without_structured_outputs_answers_through_a_forced_tool(server: StandIn, tmp_path: Path) -> None:
    plain = {**server.models[0], "id": "claude-plain", "capabilities": {"structured_outputs": {"supported": False}, "thinking": {"types": {}}}}
    server.models.insert(0, plain)
    with Kernel(stand_in_environment(server.base_url, KEY, tmp_path)) as kernel:
        kernel.run(SETUP)
        _answers_through_a_forced_tool(kernel, server)


def _answers_through_a_forced_tool(kernel: Kernel, server: StandIn) -> None:
    run = kernel.run("result = claude_magic.map('Classify this review: {review}', reviews.head(3), schema=Sentiment, model='claude-plain')")
    assert run.status == "ok", run.outputs
    body = server.message_requests[0].body
    assert "output_config" not in body and body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][0]["input_schema"]["additionalProperties"] is False
    assert value(kernel, "bool(result.error.isna().all()) and sorted(set(result.sentiment) - {'positive', 'negative', 'mixed'})") == []
    assert "the API forbids thinking with a forced tool" in one_line(kernel.run("claude_magic.map('x {review}', reviews.head(1), schema=Sentiment, model='claude-plain', thinking=True)"))


def test_rows_are_paced_under_the_rate_limit_and_draw_no_429(kernel: Kernel, server: StandIn) -> None:
    server.limit_requests(5, window=1.0)
    kernel.run("%config ClaudeMagics.rate_limits = '5/1000000/1000000/1'")
    started = time.monotonic()
    run = kernel.run("result = claude_magic.map('Say {item}', [f'word {i}' for i in range(15)], concurrency=8)", timeout=60)
    assert run.status == "ok" and value(kernel, "all(row['error'] is None for row in result)") is True
    assert server.rate_limited == 0 and len(server.message_requests) == 15
    assert time.monotonic() - started > 2.0  # three windows of five


def test_every_option_of_a_question_applies_to_each_row(kernel: Kernel, server: StandIn) -> None:
    kernel.run("def lookup(word: str) -> str:\n    '''Look a word up.'''\n    return word.upper()")
    run = kernel.run(
        "result = claude_magic.map('Define {item}', pd.Series(['join', 'merge']), model='claude-opus-5-5', system='Be terse.', "
        "max_tokens=2000, effort='low', thinking=True, tools=[lookup], usage=True)"
    )
    assert run.status == "ok", run.outputs
    first = [r for r in server.message_requests if r.prompts() == ["Define join"]][0].body
    assert (first["model"], first["system"], first["max_tokens"]) == ("claude-opus-5-5", "Be terse.", 2000)
    assert first["output_config"] == {"effort": "low"} and first["thinking"] == {"type": "adaptive"} and first["tools"][0]["name"] == "lookup"
    assert len(server.message_requests) == 4  # each row: a tool call, then the answer after its result
    assert value(kernel, "list(result.columns)") == ["answer", "error", "input_tokens", "output_tokens", "cost"]
    assert value(kernel, "bool((result.input_tokens > 0).all() and (result.cost > 0).all())") is True


def test_a_column_of_images_is_attached_to_each_row_and_polars_comes_back_as_polars(kernel: Kernel, server: StandIn) -> None:
    setup = (
        "import io, polars as pl\nfrom PIL import Image\n"
        "def png(colour):\n    buffer = io.BytesIO()\n    Image.new('RGB', (8, 4), colour).save(buffer, 'PNG')\n    return buffer.getvalue()\n"
        "photos = pl.DataFrame({'name': ['red', 'blue'], 'photo': [png('red'), png('blue')]})"
    )
    assert kernel.run(setup).status == "ok"
    assert kernel.run("result = claude_magic.map('What colour is {name}?', photos, attach=['photo'])").status == "ok"
    for request in server.message_requests:
        kinds = [block["type"] for block in request.body["messages"][0]["content"]]
        assert kinds == ["text", "image", "text"]  # the attachment's label, the image, the question
    assert value(kernel, "(type(result).__module__.split('.')[0], result.columns)") == ("polars", ["answer", "error"])


def test_estimate_with_each_counts_a_sample_and_sends_no_question(kernel: Kernel, server: StandIn) -> None:
    shown = kernel.run("%%claude --each reviews --estimate -m claude-haiku-5-5\nClassify this review: {review}")
    text = shown.displays()[-1]["data"]["text/plain"]
    assert "200 of 200 rows to send (0 answered before or in a batch) · nothing was sent" in text and "Output: up to 1,638,400 tokens" in text
    assert not server.message_requests and 1 <= len([r for r in server.requests if r.path == "/v1/messages/count_tokens"]) <= 5
    assert "budget" not in text and "confirm_above_usd" not in text
    kernel.run("%config ClaudeMagics.budget_usd = 0.5\n%config ClaudeMagics.confirm_above_usd = 0.0001")
    text = kernel.run("%%claude --each reviews --estimate -m claude-haiku-5-5\nClassify this review: {review}").displays()[-1]["data"]["text/plain"]
    refused = r"Running it would be refused: this notebook's budget of \$0\.5000 has \$(0\.\d{4}) left, less than the \$0\.8\d+ it could cost\."
    assert re.search(refused, text), text
    assert "confirm_above_usd" not in text  # the budget refuses it first
    kernel.run("%config ClaudeMagics.budget_usd = 2.0")
    text = kernel.run("%%claude --each reviews --estimate -m claude-haiku-5-5\nClassify this review: {review}").displays()[-1]["data"]["text/plain"]
    assert re.search(r"This notebook's budget of \$2\.00 has \$1\.\d\d left, enough for it\.", text), text
    assert "Above confirm_above_usd ($0.0001): running it would ask you first." in text  # as a question's estimate says
