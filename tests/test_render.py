"""Markdown fix-ups and the throttled display: what the frontend is given, and how often."""

from __future__ import annotations

import pytest

from claude_magic.ui.render import (
    REDRAW_CHARS_PER_SECOND,
    TerminalAnswer,
    ThrottledDisplay,
    close_open_fence,
    display_markdown,
    markdown_bundle,
)
from claude_magic.ui.safe_markdown import LITERAL_DOLLAR

S = LITERAL_DOLLAR


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("A coffee costs $5 and a sandwich $10.", f"A coffee costs {S}5 and a sandwich {S}10."),
        ("A coffee costs $5.", "A coffee costs $5."),  # alone in its block: nothing can pair with it
        ("A coffee costs $5.\n\nA sandwich $10.", "A coffee costs $5.\n\nA sandwich $10."),
        ("A coffee costs $5.\nA sandwich $10.", f"A coffee costs {S}5.\nA sandwich {S}10."),
        ("| a | $1 |\n|---|---|\n| b | $2 |", f"| a | {S}1 |\n|---|---|\n| b | {S}2 |"),
        ("inline $x^2$ and display $$\\frac{a}{b}$$", "inline $x^2$ and display $$\\frac{a}{b}$$"),
        ("costs $5, and $x$ is odd", f"costs {S}5, and $x$ is odd"),
        ("costs $5, and \\\\(x\\\\) is odd", f"costs {S}5, and \\\\(x\\\\) is odd"),
        ("`echo $HOME` keeps $y$", "`echo $HOME` keeps $y$"),
        ("```bash\necho $PATH $5\n```\nprice $3", f"```bash\necho $PATH $5\n```\nprice {S}3"),
        ("already escaped \\$5", "already escaped $5"),
        ("escaped \\$5 and $6", f"escaped {S}5 and {S}6"),
        ("$n_{left}$ rows", "$n_{left}$ rows"),
        ("no dollars at all", "no dollars at all"),
        ("between $1 and $2$", f"between {S}1 and $2$"),
    ],
)
def test_a_dollar_that_is_not_math_reads_as_a_dollar_and_math_is_kept(text: str, shown: str) -> None:
    assert display_markdown(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x\n```python\nprint(1)", "x\n```python\nprint(1)\n```"),
        ("```\na\n```\n", "```\na\n```\n"),
        ("~~~~\nx\n~~~", "~~~~\nx\n~~~\n~~~~"),
        ("````\n```\nnested\n", "````\n```\nnested\n````"),
        ("no code", "no code"),
    ],
)
def test_an_unclosed_fence_is_closed_for_display(text: str, shown: str) -> None:
    assert close_open_fence(text) == shown


def test_the_bundle_keeps_the_exact_text_as_plain() -> None:
    bundle = markdown_bundle("price $5 or $6\n```py\nx = 1")
    assert bundle == {"text/plain": "price $5 or $6\n```py\nx = 1", "text/markdown": f"price {S}5 or {S}6\n```py\nx = 1\n```"}
    assert display_markdown("done") == "done"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stream(chars: int, *, tokens_per_second: float = 100.0, refresh_rate: float = 10.0) -> tuple[int, int]:
    """Feed an answer of ``chars`` characters at a fixed rate; returns (draws, characters drawn)."""
    clock = FakeClock()
    drawn: list[int] = []
    display = ThrottledDisplay(lambda text: drawn.append(len(text)), refresh_rate=refresh_rate, clock=clock)
    piece = "word "
    for _ in range(chars // len(piece)):
        clock.now += 1 / tokens_per_second
        display.feed(piece)
    display.finish("x" * chars)
    return display.draws, sum(drawn)


def test_first_text_is_drawn_at_once_then_at_most_refresh_rate_a_second() -> None:
    clock = FakeClock()
    drawn: list[str] = []
    display = ThrottledDisplay(drawn.append, refresh_rate=10, clock=clock)
    display.feed("Hello")
    assert drawn == ["Hello"]
    for _ in range(50):
        clock.now += 0.01
        display.feed(" x")
    assert 1 + 4 <= len(drawn) <= 1 + 5  # 0.5 s at most 10 draws a second
    display.finish("final")
    assert drawn[-1] == "final"


def test_redraw_cost_grows_linearly_with_the_answer() -> None:
    short_draws, short_cost = stream(40_000)
    long_draws, long_cost = stream(160_000)
    assert long_cost / short_cost < 4.5  # linear would be 4; per-delta redraws would be 16
    assert long_draws > short_draws  # still redrawn as it grows


def test_long_answers_are_redrawn_less_often() -> None:
    clock = FakeClock()
    display = ThrottledDisplay(lambda text: None, refresh_rate=10, clock=clock)
    display.feed("x" * (REDRAW_CHARS_PER_SECOND // 2))
    clock.now += 0.2
    display.feed("y")
    assert display.draws == 1  # a 50,000-character answer waits 0.5 s between redraws
    clock.now += 0.31
    display.feed("z")
    assert display.draws == 2


def test_terminal_answer_writes_as_it_arrives(capsys: pytest.CaptureFixture[str]) -> None:
    answer = TerminalAnswer()
    answer.feed("Hel")
    assert capsys.readouterr().out == "Hel"
    answer.feed("lo")
    answer.finish("Hello")
    assert capsys.readouterr().out == "lo\n"


def test_a_terminal_answer_says_it_waits_for_the_rate_limit_then_writes_over_it() -> None:
    import io

    out = io.StringIO()
    answer = TerminalAnswer(out)
    answer.waiting(1.2)
    answer.waiting(2.0)
    answer.feed("Hello")
    answer.finish("Hello")
    line = "waiting for the rate limit (2 s)"
    assert out.getvalue() == f"\rwaiting for the rate limit (1 s)\r{line}\r{' ' * len(line)}\rHello\n"


def test_the_panel_says_it_waits_for_the_rate_limit_until_the_answer_starts() -> None:
    import ipywidgets

    from claude_magic.ui.panel import PanelAnswer

    message = ipywidgets.HTMLMath("")
    answer = PanelAnswer(message, refresh_rate=100)
    answer.waiting(3.4)
    assert message.value == "<em>waiting for the rate limit (3 s)</em>"
    answer.feed("The answer")
    assert "The answer" in message.value and "waiting" not in message.value
