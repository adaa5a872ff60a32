"""Concurrency of ``--compare``: three models asked at once, against the three asked one by one.

The stand-in streams slow tokens (as a real model does), so the figure is wall time: close
to 1/3 of the sum means the three answers really stream at the same time.

    .venv/bin/python bench/compare.py
"""

from __future__ import annotations

import time

from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.magics import compare
from claude_magic.testing import StandIn

MODELS = ["claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5"]
QUESTION = [{"type": "text", "text": "Stream a medium answer [[words=100]]"}]


def wall_time(session: ClaudeSession, settings: ClientSettings, models: list[str]) -> float:
    base = AskOptions(model=models[0], max_tokens=1000, use_history=False)
    columns = compare.variants(base, ",".join(models), None, None, {})
    started = time.perf_counter()
    compare.run(session, QUESTION, columns, settings, None, lambda columns: None)
    assert all(c.total is not None for c in columns), [c.error for c in columns]
    return time.perf_counter() - started


def main() -> None:
    with StandIn(delay=0.02) as server:
        settings = ClientSettings(credentials=Credentials(api_key="sk-ant-bench"), base_url=server.base_url)
        session = ClaudeSession(locate=lambda: None)
        alone = [wall_time(session, settings, [model]) for model in MODELS]
        together = wall_time(session, settings, MODELS)
    print(f"one by one: {' + '.join(f'{t:.2f}' for t in alone)} = {sum(alone):.2f} s")
    print(f"--compare over {len(MODELS)} models: {together:.2f} s = {together / sum(alone):.2f} of the sum (ideal 1/{len(MODELS)} = {1 / len(MODELS):.2f})")


if __name__ == "__main__":
    main()
