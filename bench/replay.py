"""Replay from a large notebook: what finding a saved answer costs a question.

A 50 MB notebook (mostly figures: 60 cells of ~0.8 MB base64 PNG, as plots make them), with 200
answers saved with their provenance, one of them the answer to the question asked here.
Figures, each the median of several runs:

- index build: reading the file's saved answers (a new index, as after the file changed);
- lookup: finding an answer in a built index (a stat of the file, then a dict lookup);
- a replayed question, end to end through the turn engine (request built and hashed, looked
  up, shown, recorded);
- for comparison in the same run: a question answered by the stand-in (on loopback, so far
  less than any real answer), and ``json.load`` of the whole file, what parsing it would cost.

    .venv/bin/python bench/replay.py [--megabytes 50] [--runs 7]
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
from pathlib import Path

import nbformat
import numpy as np
from timing import median_seconds

from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core import engine
from claude_magic.core.provenance import PROVENANCE_KEY, Provenance
from claude_magic.core.replay import NotebookAnswers
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.testing import StandIn

QUESTION = [{"type": "text", "text": "What stands out in this month's sales by region? [[words=200]]"}]
OPTIONS = AskOptions(model="claude-sonnet-5-5", max_tokens=4096, use_history=False)
ANSWERS = 200
FIGURE_BYTES = 600_000


class Quiet:
    def feed(self, text: str) -> None:
        pass

    def feed_thinking(self, text: str) -> None:
        pass

    def finish(self, text: str) -> None:
        pass


def ask(session: ClaudeSession, settings: ClientSettings, options: AskOptions = OPTIONS) -> engine.Answer:
    return engine.ask(session, QUESTION, options, settings, Quiet)


def notebook(path: Path, megabytes: int, answered: Provenance) -> None:
    """A notebook of figures and answers, ``answered`` among them."""
    rng = np.random.default_rng(0)
    figures = megabytes * 1_000_000 * 3 // 4 // FIGURE_BYTES
    cells = []
    for n in range(max(figures, ANSWERS)):
        if n < figures:
            png = base64.b64encode(rng.integers(0, 256, FIGURE_BYTES, dtype=np.uint8).tobytes()).decode()
            figure = nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
            cells.append(nbformat.v4.new_code_cell(f"plot({n})", outputs=[figure]))
        if n < ANSWERS:
            saved = answered if n == ANSWERS // 2 else Provenance.from_json({**answered.to_json(), "request_sha256": f"{n:064x}"})
            assert saved is not None
            output = nbformat.v4.new_output("display_data", data={"text/markdown": saved.text, "text/plain": saved.text}, metadata={PROVENANCE_KEY: saved.to_json()})
            cells.append(nbformat.v4.new_code_cell(f"%claude question {n}", outputs=[output]))
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    os.environ["CLAUDE_MAGIC_HOME"] = str(folder / "home")
    path = folder / "large.ipynb"
    with StandIn() as server:
        settings = ClientSettings(credentials=Credentials(api_key="sk-ant-bench"), base_url=server.base_url)
        asking = ClaudeSession()
        answered = ask(asking, settings).provenance
        assert answered is not None
        notebook(path, args.megabytes, answered)
        stand_in = median_seconds(lambda: ask(asking, settings), args.runs, warm=True)
        build = median_seconds(lambda: len(NotebookAnswers(path)), args.runs)
        index = NotebookAnswers(path)
        assert index.find(answered.request_sha256 or "") is not None
        lookup = median_seconds(lambda: index.find(answered.request_sha256 or ""), args.runs * 100)
        replaying = ClaudeSession(locate=lambda: str(path))
        replay_options = AskOptions(**{**OPTIONS.__dict__, "replay": True})
        assert ask(replaying, settings, replay_options).replayed
        sent = len(server.message_requests)
        replayed = median_seconds(lambda: ask(replaying, settings, replay_options), args.runs)
        assert len(server.message_requests) == sent, "a replayed question sent a request"
        import json

        parse = median_seconds(lambda: json.loads(path.read_bytes()), 3)
    size = path.stat().st_size / 1e6
    print(f"replay from a {size:.0f} MB notebook with {len(index)} saved answers (medians of {args.runs} runs):")
    print(f"  index build (the file's saved answers read): {build * 1000:7.1f} ms  (json.load of the whole file: {parse * 1000:.0f} ms)")
    print(f"  lookup in the built index (stat + dict):      {lookup * 1e6:7.1f} µs")
    print(f"  a replayed question, through the engine:      {replayed * 1000:7.1f} ms")
    print(f"  a question answered by the stand-in:          {stand_in * 1000:7.1f} ms  (loopback: a real answer takes seconds)")
    print(f"  index build / stand-in answer: {build / stand_in:.2f}×; replayed question / stand-in answer: {replayed / stand_in:.2f}×")


if __name__ == "__main__":
    main()
