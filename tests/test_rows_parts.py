"""The parts of a job over rows that need no kernel: rows in and results out, the rate limits a
kernel paces itself under (or not, behind the Jupyter server's proxy), the progress line."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pytest

from claude_magic.api.limiter import TIERS, Limits
from claude_magic.core.rows import Progress
from claude_magic.core.table import RowsError, result_like, rows_of
from claude_magic.magics.settings import limits_of
from claude_magic.ui.progress import line


def test_rows_answer_to_their_columns_and_results_take_the_inputs_kind() -> None:
    frame = rows_of(pd.DataFrame({"a": [1, 2]}, index=["x", "y"]))
    assert frame.row(1) == {"a": 2} and list(result_like(frame, {"answer": ["p", "q"]}).index) == ["x", "y"]
    series = rows_of(pl.Series("review", ["good", "bad"]))
    assert series.row(0) == {"item": "good", "review": "good"} and type(result_like(series, {"answer": [1, 2]})).__name__ == "DataFrame"
    dicts = rows_of([{"a": 1}, {"b": 2}])
    assert dicts.names == ["a", "b"] and dicts.row(1) == {"a": None, "b": 2}
    assert result_like(rows_of(["one"], item="word"), {"answer": ["x"]}) == [{"answer": "x"}]
    with pytest.raises(RowsError, match="two columns named 'a'"):
        rows_of(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(RowsError, match="LazyFrame"):
        rows_of(pl.LazyFrame({"a": [1]}))


def test_rate_limits_are_a_tier_or_three_numbers_and_a_window() -> None:
    assert limits_of("free") == Limits.for_tier("free") and set(TIERS) == {"free", "pro"}  # the setting's choices
    assert limits_of("4000/2000000/400000") == Limits(4000, 2_000_000, 400_000, 60.0)
    assert limits_of("5/100/100/1") == Limits(5, 100, 100, 1.0)
    for wrong in ("gold", "1/2", "a/b/c", "0/1/1"):
        with pytest.raises(ValueError):
            limits_of(wrong)


def test_behind_the_jupyter_servers_proxy_the_kernel_does_not_pace_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_magic.magics import ClaudeMagics

    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8888/claude-magic/")
    magics = ClaudeMagics(shell=None)
    assert magics.rows_limiter() is not None and magics.rows_limiter() is magics.rows_limiter()  # one for the kernel
    monkeypatch.setenv("CLAUDE_MAGIC_PROXY", "http://127.0.0.1:8888/claude-magic")
    assert magics.rows_limiter() is None


def test_the_progress_line_says_rows_tokens_cost_and_time_left() -> None:
    progress = Progress(10, done=4, failed=1, from_cache=2, input_tokens=1200, output_tokens=300, dollars=0.5)
    progress.started -= 5.0
    text = line(progress)
    assert text.startswith("7/10 rows · 1 failed · 2 from the answer cache · 1,200 in · 300 out tokens · $0.5000 so far (≈ $0.8000 in all)")
    assert text.endswith("3 s left")
    progress.finished = True
    assert line(progress).endswith("$0.5000 · in 5.0 s")
