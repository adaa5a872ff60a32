"""Keeping up with a shared log: what a question costs the store as the conversation grows.

Before each request a kernel catches up with its notebook's log (``Conversation.refresh``):
its cost must follow the bytes other kernels wrote since, not the log's size. Logs of 4, 40
and 400 turns (question ~300 characters, answer ~3,000), two kernels on each: the figures are
a refresh with nothing new, a refresh that picks up one exchange the other kernel recorded,
and recording one exchange (catch up, append, sync), next to replaying the whole log
(``Conversation.open``, what a kernel would do per question without a cursor). Ratios are to
the 4-turn log in the same run; each log is about 3.5 KB a turn.

    .venv/bin/python bench/store.py [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from timing import median_seconds

from claude_magic.core.conversation import CellRun, Conversation, Exchange

NOTEBOOK = "/bench/shared.ipynb"
SIZES = (4, 40, 400)
CEILING = 3.0
"""--check: the most a refresh on the 400-turn log may cost, as a multiple of the 4-turn one."""


def exchange(n: int) -> Exchange:
    question = [{"type": "text", "text": f"Question {n}: " + "what stands out in these numbers? " * 9}]
    answer = [{"type": "text", "text": f"Answer {n}: " + "The trend is up, with a dip in March. " * 80}]
    usage = {"input_tokens": 1200, "output_tokens": 700}
    return Exchange(question, answer, CellRun(f"cell-{n}", n, n), "claude-sonnet-5-5", usage)


def measure(root: Path, turns: int) -> dict[str, float]:
    """The figures on a log of ``turns`` exchanges (each one taken before the log grows)."""
    mine, other = Conversation.open(NOTEBOOK, root), Conversation.open(NOTEBOOK, root)
    for n in range(turns):
        other.record(exchange(n))
    mine.refresh()
    figures = {"replay the whole log": median_seconds(lambda: Conversation.open(NOTEBOOK, root), 5)}
    figures["refresh, nothing new"] = median_seconds(mine.refresh, 21)
    picked = []
    for n in range(turns, turns + 21):
        other.record(exchange(n))
        picked.append(median_seconds(mine.refresh, 1))
    figures["refresh, one new exchange"] = statistics.median(picked)
    serial = iter(range(turns + 21, 10**6))
    figures["record one exchange"] = median_seconds(lambda: mine.record(exchange(next(serial))), 21)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 when a 400-turn refresh costs over {CEILING:g}× a 4-turn one"
    )
    args = parser.parse_args()
    results = {}
    for turns in SIZES:
        with tempfile.TemporaryDirectory() as root:
            results[turns] = measure(Path(root), turns)
        print(f"{turns:4} turns")
        for name, seconds in results[turns].items():
            print(f"  {name:<28} {seconds * 1e3:8.3f} ms   ×{seconds / results[SIZES[0]][name]:6.1f}")
    worst = max(
        results[SIZES[-1]][name] / results[SIZES[0]][name]
        for name in ("refresh, nothing new", "refresh, one new exchange")
    )
    if args.check and worst > CEILING:
        print(f"FAIL: a refresh on {SIZES[-1]} turns costs {worst:.1f}× one on {SIZES[0]} (ceiling {CEILING:g}×)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
