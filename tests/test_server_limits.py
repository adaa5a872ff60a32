"""The Jupyter server's one rate limiter and its budgets, with real kernels, against the stand-in.

One server for the module, its limits scaled for test time: 10 requests a 3-second window (the
stand-in enforces the same limit, and counts each 429 it has to return), a daily budget of five
cents. Three kernels each send 20 requests at once (a notebook's loop of concurrent calls); a
fourth uses up the first window just before, so that every one of the 60 queues (each kernel sent
one request earlier, so that none pays for its first connection then). The queue must be fair
(round-robin by kernel) and keep the upstream busy.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from server_harness import JupyterServer, jupyter_server

from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-server-limits-key-41c9b2"
LIMIT, WINDOW = 10, 3.0
SLACK = 0.75
"""Seconds of the window the stand-in forgives: a request the limiter lets go reaches the stand-in
a little later, on a loaded test machine up to 0.7 s later than the one before it (nothing against
the API's minute; a quarter of this window)."""
PER_KERNEL = 20
SETTINGS = {
    "requests_per_minute": LIMIT,
    "input_tokens_per_minute": 1_000_000,
    "output_tokens_per_minute": 1_000_000,
    "rate_window": WINDOW,
    "daily_budget_usd": 0.05,
}
CONCURRENT = """
import asyncio, time
from claude_magic.api import AsyncClient, MessageRequest

async def ask_at(start, label, count):
    async with AsyncClient() as client:
        async def one(text):
            request = MessageRequest(model="claude-haiku-5-5", max_tokens=16, messages=[{"role": "user", "content": text}])
            async with client.stream(request) as stream:
                async for _ in stream:
                    pass
        await one(f"warm-up {label}")
        await asyncio.sleep(max(start - time.time(), 0))
        await asyncio.gather(*(one(f"{label} {i}") for i in range(count)))

await ask_at(%r, %r, %d)
"""


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with StandIn(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stand_in: StandIn) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter"), upstream=stand_in.base_url, key=KEY, settings=SETTINGS) as running:
        yield running


def test_three_kernels_share_the_rate_limit_fairly_and_use_all_of_it(server: JupyterServer, stand_in: StandIn) -> None:
    kernels = {label: server.start_kernel()[1] for label in ("A", "B", "C", "fill")}
    stand_in.reset()
    stand_in.limit_requests(LIMIT, WINDOW, slack=SLACK)
    start = time.time() + 3
    asked = {label: kernel.submit(CONCURRENT % (start, label, PER_KERNEL)) for label, kernel in kernels.items() if label != "fill"}
    asked["fill"] = kernels["fill"].submit(CONCURRENT % (start - 0.3, "fill", LIMIT))
    results = {label: kernels[label].collect(message, timeout=120) for label, message in asked.items()}
    assert all(result.status == "ok" for result in results.values()), {label: r.error for label, r in results.items()}

    sends = "\n".join(line for line in server.log.read_text().splitlines() if "s after it came" in line)
    assert stand_in.rate_limited == 0, f"the stand-in had to answer 429: the limiter let too many through:\n{arrivals(stand_in)}\n{sends}"
    sent = [r for r in stand_in.message_requests if r.prompts()[-1].split()[0] in ("A", "B", "C")]
    assert len(sent) == 3 * PER_KERNEL
    first_half = Counter(r.prompts()[-1].split()[0] for r in sent[: len(sent) // 2])
    fair = len(sent) / 2 / 3
    assert all(abs(first_half[label] - fair) <= 0.2 * fair for label in "ABC"), f"shares of the first half: {dict(first_half)}"
    busy = sent[-1].received - sent[0].received
    throughput = (len(sent) - 1) / busy
    assert throughput >= 0.9 * LIMIT / WINDOW, f"{throughput:.2f} requests a second, the limit is {LIMIT / WINDOW:g}"
    print(f"\nfairness: first half {dict(first_half)}; throughput {throughput:.2f}/s of {LIMIT / WINDOW:g}/s; no 429")


def test_a_request_that_could_pass_the_budget_is_refused_in_one_line_and_not_sent(server: JupyterServer, stand_in: StandIn) -> None:
    _, kernel = server.start_kernel()
    stand_in.reset()
    assert kernel.run("%claude --max-tokens 64 A small question fits").status == "ok"
    assert len(stand_in.message_requests) == 1
    refused = kernel.run("%claude A question that could cost eight cents")  # 8,192 output tokens at $10 a million
    line = refused.error["traceback"][0]
    assert "the daily budget of $0.05 has $0.0" in line and "left (it renews at midnight UTC)" in line, line
    assert "this request could cost about $0.08, so it was not sent (402 billing_error)" in line, line
    assert len(refused.error["traceback"]) == 1
    assert len(stand_in.message_requests) == 1, "the refused request reached the upstream"
    usage = kernel.run("%claude usage --all").displays()[0]["data"]["text/plain"]
    assert "daily budget $0.05, $0.0" in usage and "left" in usage


def arrivals(stand_in: StandIn) -> str:
    """When each message request reached the stand-in (from the first), with its status and question."""
    first = stand_in.message_requests[0].received
    return "\n".join(f"{r.received - first:7.3f} {r.status} {r.prompts()[-1]}" for r in stand_in.message_requests)
