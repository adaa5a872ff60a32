"""What prompt caching saves on a 10-turn conversation, against the stand-in.

The conversation goes through the real session (history, context budget, cache breakpoints,
the HTTP client) to the stand-in, whose cache reports reads and writes as the API does
(see ``claude_magic/testing/cache.py``). Each question is a line; each answer about 200
words. Figures: the share of input tokens read from the cache, and the estimated cost with
and without caching at the model's prices (``claude_magic/pricing.py``).

    .venv/bin/python bench/caching.py [--turns 10] [--check]
"""

from __future__ import annotations

import argparse
import sys

from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core import engine
from claude_magic.core.conversation import CellRun
from claude_magic.core.pricing import Tally
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.testing import StandIn

MODEL = "claude-sonnet-5-5"
SYSTEM = "You are a careful data analyst. Answer with evidence from the data, and say what you assumed. " * 80
SCENARIOS = {"no system prompt (the default)": "", "a ~2,000-token system prompt": SYSTEM}
FLOOR = 0.6
"""--check: the least share of input read from the cache over 10 turns, with the defaults."""


class Quiet:
    def feed(self, text: str) -> None:
        pass

    def finish(self, text: str) -> None:
        pass


def converse(server: StandIn, turns: int, system: str, *, caching: bool) -> Tally:
    server.reset()
    session = ClaudeSession()
    session.prompt_caching = caching
    settings = ClientSettings(credentials=Credentials(api_key="sk-ant-bench"), base_url=server.base_url)
    options = AskOptions(model=MODEL, max_tokens=4096, system=system)
    for n in range(1, turns + 1):
        question = [{"type": "text", "text": f"Question {n}: what stands out in this month's sales by region? [[words=200]]"}]
        engine.ask(session, question, options, settings, Quiet, CellRun(f"cell-{n}", n, n))
    session.close()
    return session.usage


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--check", action="store_true", help=f"exit 1 when the default scenario reads less than {FLOOR:.0%} from the cache")
    args = parser.parse_args()
    print(f"{args.turns}-turn conversation with {MODEL} against the stand-in")
    shares = []
    with StandIn() as server:
        for name, system in SCENARIOS.items():
            cached = converse(server, args.turns, system, caching=True)
            plain = converse(server, args.turns, system, caching=False)
            t = cached.tokens
            shares.append(cached.cached_share)
            print(f"  {name}:")
            print(f"    input tokens {t.prompt:,}: {t.cache_read:,} read from the cache ({cached.cached_share:.0%}), "
                  f"{t.written:,} written to it, {t.input:,} uncached")
            print(f"    estimated cost {cached.cost_text()} with caching, {plain.cost_text()} without "
                  f"({1 - cached.dollars / plain.dollars:.0%} less)")
    return 1 if args.check and shares[0] < FLOOR else 0


if __name__ == "__main__":
    sys.exit(main())
