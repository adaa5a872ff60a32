"""What the server's rate limiter costs a request, as more kernels wait in its queue.

The limiter is saturated throughout: its output-token limit holds one request's ``max_tokens``, so
exactly one request is in flight and every other client (kernel) has one waiting. Each cycle is one
request's passage: the client whose turn it is gets its grant, settles it with its real usage
(which frees the room, so the next client in the rotation is granted there and then), and asks
again, joining the back of the queue. A second figure adds ``observe`` of a response's
``anthropic-ratelimit-*`` headers, as the proxy does on every response. The clock is injected and
moves 60 ms a cycle, so about a thousand reservations stay in the one-minute window and one ages
out each cycle, as under a 1,000-requests-a-minute limit.

Ratios are to 1 client waiting, in the same run. They should stay flat: a turn is O(1) (each
reservation is appended and aged out once, the round-robin moves one client), never a scan of the
queue or of the window. The sizes take turns run after run, so that a machine whose load changes
meanwhile weighs on each alike; each figure is the median of its runs.

    .venv/bin/python bench/limiter.py [--cycles 20000] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Callable

from timing import median_seconds

from claude_magic.api.limiter import Limits, RateLimiter

QUEUED = (1, 10, 100)
MAX_TOKENS = 8_192
STEP = 0.06
"""Seconds the injected clock moves a cycle: ~1,000 reservations in a one-minute window."""
HEADERS = {
    "anthropic-ratelimit-requests-limit": "1000000",
    "anthropic-ratelimit-requests-remaining": "999000",
    "anthropic-ratelimit-requests-reset": "2026-11-05T10:01:00Z",
    "anthropic-ratelimit-input-tokens-limit": "1000000000",
    "anthropic-ratelimit-input-tokens-remaining": "999000000",
    "anthropic-ratelimit-input-tokens-reset": "2026-11-05T10:01:00Z",
    "anthropic-ratelimit-output-tokens-limit": "8192",
    "anthropic-ratelimit-output-tokens-remaining": "8192",
    "anthropic-ratelimit-output-tokens-reset": "2026-11-05T10:01:00Z",
}
CEILING = 2.0
"""--check: the most a cycle with 100 clients waiting may cost, as a multiple of one with 1 waiting."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def saturate(queued: int, cycles: int, observe: bool) -> None:
    """``cycles`` requests through a limiter with ``queued`` clients always waiting (one more is in flight)."""
    clock = Clock()
    limiter = RateLimiter(Limits(10**6, 10**9, MAX_TOKENS), clock)
    left = cycles

    async def client(name: str) -> None:
        nonlocal left
        while left > 0:
            grant = await limiter.acquire(name, 2_000, MAX_TOKENS)
            left -= 1
            clock.now += STEP
            await asyncio.sleep(0)  # the response: meanwhile the others queue behind it
            if observe:
                limiter.observe(HEADERS, grant=grant)
            limiter.settle(grant, input_tokens=2_000, output_tokens=0)

    clients = [asyncio.create_task(client(f"kernel-{n}")) for n in range(queued + 1)]
    while left > 0:
        await asyncio.sleep(0.01)
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)


def one_run(queued: int, cycles: int, observe: bool) -> Callable[[], None]:
    return lambda: asyncio.run(saturate(queued, cycles, observe))


def per_cycle(cycles: int, observe: bool, runs: int) -> dict[int, float]:
    """Seconds a request, by number of clients waiting."""
    timings: dict[int, list[float]] = {queued: [] for queued in QUEUED}
    asyncio.run(saturate(QUEUED[0], cycles, observe))  # warm up
    for _ in range(runs):
        for queued in QUEUED:
            timings[queued].append(median_seconds(one_run(queued, cycles, observe), 1))
    return {queued: statistics.median(times) / cycles for queued, times in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 when 100 clients waiting cost over {CEILING:g}× 1 waiting"
    )
    args = parser.parse_args()
    worst = 0.0
    for name, observe in (("acquire + settle", False), ("acquire + observe + settle", True)):
        print(name)
        figures = per_cycle(args.cycles, observe, args.runs)
        baseline = figures[QUEUED[0]]
        for queued, seconds in figures.items():
            worst = max(worst, seconds / baseline)
            print(f"  {queued:4} waiting   {seconds * 1e6:7.2f} µs a request   ×{seconds / baseline:5.2f}")
    if args.check and worst > CEILING:
        print(f"FAIL: with {QUEUED[-1]} clients waiting a request costs {worst:.2f}× one with {QUEUED[0]} (ceiling {CEILING:g}×)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
