"""What a question may cost, before it is sent: ``--estimate``, ``confirm_above_usd`` and the
notebook's ``budget_usd``, in real kernels against the stand-in (and the range's arithmetic)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment

from claude_magic.core.pricing import PRICES, format_cost
from claude_magic.core.spending import cost_range
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-spending-test-key-5d6e7f8a9b"
NOTEBOOK = "/work/budget.ipynb"


@pytest.fixture(autouse=True)
def quiet(server: StandIn) -> None:
    server.reset()


def kernel(server: StandIn, home: Path) -> Kernel:
    return Kernel.with_magic(stand_in_environment(server.base_url, KEY, home, NOTEBOOK))


def refused_line(result: CellResult) -> str:
    """The one line a refusal shows (no traceback, no key)."""
    error = result.error
    assert error is not None and error["ename"] == "ClaudeMagicError", result.outputs
    assert len(error["traceback"]) == 1 and KEY not in result.everything()
    return str(error["evalue"])


def test_the_range_runs_from_the_prefix_read_and_no_output_to_the_prefix_written_and_max_tokens() -> None:
    rates = PRICES["claude-opus-5-5"].rates
    r = cost_range("claude-opus-5-5", input_tokens=10_000, cacheable_tokens=8_000, max_output=4_000)
    assert r.least == pytest.approx((2_000 * rates.input + 8_000 * rates.cache_read) / 1e6)
    assert r.most == pytest.approx((2_000 * rates.input + 8_000 * rates.cache_write + 4_000 * rates.output) / 1e6)
    assert cost_range("no-such-model", 10, 0, 10).text == "cost unknown (no-such-model has no price)"


def test_estimate_counts_with_the_server_and_sends_no_question(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as k:
        shown = k.run("%claude --estimate -m claude-opus-5-5 --max-tokens 4000 What is a p-value?")
        assert shown.status == "ok"
        text = shown.displays()[-1]["data"]["text/plain"]
        assert [r.path for r in server.requests if r.method == "POST"] == ["/v1/messages/count_tokens"]
        assert "counted by the server" in text and "up to 4,000 tokens" in text
        assert "Cost: $0.0" in text and "the question was not sent" in text and "budget" not in text
        k.run("%config ClaudeMagics.budget_usd = 0.001")
        text = k.run("%claude --estimate -m claude-opus-5-5 --max-tokens 4000 What is a p-value?").displays()[-1]["data"]["text/plain"]
        assert "Asking it would be refused: this notebook's budget of $0.0010 has $0.0010 left, less than the $0.0" in text, text
        assert re.search(r"less than the \$0\.0\d+ it could cost\.$", text), text
        k.run("%config ClaudeMagics.budget_usd = 1.0")
        text = k.run("%claude --estimate -m claude-opus-5-5 --max-tokens 4000 What is a p-value?").displays()[-1]["data"]["text/plain"]
        assert text.endswith("This notebook's budget of $1.00 has $1.00 left, enough for it."), text
        k.run("%config ClaudeMagics.budget_usd = None")
        server.fail(route="/v1/messages/count_tokens", status=500, times=3)
        text = k.run("%claude --estimate What is a p-value?").displays()[-1]["data"]["text/plain"]
        assert "a local estimate (" in text and "nothing was sent" in text
        assert not server.message_requests


def test_an_expensive_question_asks_first_and_a_no_sends_nothing(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as k:
        k.run("%config ClaudeMagics.confirm_above_usd = 0.0001")
        prompt, declined = k.run_answering("%claude -m claude-opus-5-5 What is a p-value?", "n")
        assert "could cost up to $0.1" in prompt and "confirm_above_usd ($0.0001)" in prompt and prompt.endswith("Send it? [y/N] ")
        assert refused_line(declined) == "not sent: declined"
        assert not server.message_requests
        _, accepted = k.run_answering("%claude -m claude-opus-5-5 What is a p-value?", "y")
        assert accepted.status == "ok" and server.message_requests[-1].prompts() == ["What is a p-value?"]


def test_where_no_one_can_be_asked_an_expensive_question_needs_yes(server: StandIn, tmp_path: Path) -> None:
    """nbclient and papermill run cells with no way to answer ``input()``."""
    with kernel(server, tmp_path) as k:
        k.run("%config ClaudeMagics.confirm_above_usd = 0.0001")
        line = refused_line(k.run("%claude Hello"))
        assert "this frontend can't ask: nothing was sent (add --yes to send it)" in line
        assert not server.message_requests
        assert k.run("%claude --yes Hello").status == "ok" and len(server.message_requests) == 1
        compared = k.run("%claude --compare claude-haiku-5-5,claude-sonnet-5-5 Hello")
        assert "more than confirm_above_usd" in refused_line(compared) and len(server.message_requests) == 1


def test_the_budget_holds_across_restarts_and_refuses_before_sending(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as k:
        k.run("%config ClaudeMagics.confirm_above_usd = None")
        assert k.run("%claude --max-tokens 100 First").status == "ok"
        spent = float(k.run("print(get_ipython().magics_manager.registry['ClaudeMagics'].notebook_spent())").stdout)
    assert spent > 0
    with kernel(server, tmp_path) as k:  # a new kernel for the same notebook: what it spent still counts
        k.run(f"%config ClaudeMagics.budget_usd = {spent * 1.5!r}")
        line = refused_line(k.run("%claude --max-tokens 100 Second"))
        assert line.startswith(f"this notebook's budget of {format_cost(spent * 1.5)} has {format_cost(spent * 0.5)} left")
        assert line.endswith("nothing was sent (raise ClaudeMagics.budget_usd, or lower --max-tokens)")
        assert len(server.message_requests) == 1
        k.run(f"%config ClaudeMagics.budget_usd = {spent * 10!r}")
        assert k.run("%claude --max-tokens 100 Second").status == "ok" and len(server.message_requests) == 2
