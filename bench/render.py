"""CPU cost of the magic's display updates as an answer grows: 2k, 8k and 32k tokens.

The answer is fed to the real notebook renderer (``NotebookAnswer``) inside an in-process
ipykernel, so every redraw goes through IPython's display machinery and the kernel
session's serialisation, as in a notebook. Tokens "arrive" at a fixed rate on a simulated
clock, so the figures measure rendering, not waiting. Linear cost: 32k costs 4x 8k.
``--answer markdown`` streams rich Markdown instead of plain words (code with ``<`` in it,
tables, math, HTML-like text): what making model text safe to render works hardest on.

    .venv/bin/python bench/render.py [--check] [--answer markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet the in-process kernel's debugger

from ipykernel.inprocess.manager import InProcessKernelManager

from claude_magic.testing.answers import RICH_MARKDOWN, split_into_deltas
from claude_magic.ui.render import NotebookAnswer

TOKENS_PER_SECOND = 80.0


def rich_markdown(tokens: int, run: int) -> list[str]:
    """``tokens`` pieces of rich Markdown in numbered sections: no part repeats, within a run or
    across runs (the renderer remembers the parts it has made safe)."""
    pieces: list[str] = []
    for section in range(tokens):
        heading = f"## Part {section} of run {run}"
        text = f"{heading}\n\n{RICH_MARKDOWN}\nIn HTML, `<b>` is bold: <b>{section}</b> shows as written, `a < b` too.\n\n"
        pieces += split_into_deltas(text)
        if len(pieces) >= tokens:
            return pieces[:tokens]
    return pieces


ANSWERS: dict[str, Callable[[int, int], list[str]]] = {
    "words": lambda tokens, run: ["word "] * tokens,  # about one token each
    "markdown": rich_markdown,
}
SIZES = (2_000, 8_000, 32_000)
LIMIT = 4.5


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def render_cost(pieces: list[str]) -> tuple[float, int]:
    """CPU seconds to stream ``pieces`` (a token each) through the notebook renderer, and its redraw count."""
    clock = SimulatedClock()
    started = time.process_time()
    answer = NotebookAnswer(clock=clock)
    for piece in pieces:
        clock.now += 1 / TOKENS_PER_SECOND
        answer.feed(piece)
    answer.finish("".join(pieces))
    return time.process_time() - started, answer.draws


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="exit 1 when 32k costs more than 4.5x 8k")
    parser.add_argument("--answer", choices=sorted(ANSWERS), default="words", help="what streams: plain words or rich Markdown")
    args = parser.parse_args()
    manager = InProcessKernelManager()
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    costs: dict[int, float] = {}
    print(f"render path, {args.answer} arriving at {TOKENS_PER_SECOND:g} tokens/s (simulated), median of {args.runs} runs")
    for tokens in SIZES:
        runs = [render_cost(ANSWERS[args.answer](tokens, run)) for run in range(args.runs)]
        costs[tokens] = statistics.median(cost for cost, _ in runs)
        print(f"  {tokens:>6,} tokens: {costs[tokens] * 1000:8.1f} ms CPU, {runs[0][1]:4d} redraws, "
              f"{costs[tokens] / tokens * 1e6:6.1f} µs per token")
    published = [m for m in client.iopub_channel.get_msgs() if m["header"]["msg_type"] == "update_display_data"]
    print(f"  ({len(published)} update_display_data messages reached the kernel's iopub channel)")
    ratio = costs[32_000] / costs[8_000]
    print(f"32k / 8k = {ratio:.2f} (linear: 4.00, limit {LIMIT}); 8k / 2k = {costs[8_000] / costs[2_000]:.2f}")
    client.stop_channels()
    manager.shutdown_kernel()
    return 1 if args.check and ratio > LIMIT else 0


if __name__ == "__main__":
    sys.exit(main())
