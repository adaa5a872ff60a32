"""The server's one rate limiter: real asyncio on the real clock with a scaled-down window, or an
injected clock where the arithmetic must be exact (those cases never wait)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from claude_magic.api.limiter import Limits, RateLimiter, RequestTooLarge, counted_usage

WINDOW = 0.5
"""Seconds: the tests' minute."""
PLENTY = 10**9


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def reset_in(seconds: float) -> str:
    """An ``anthropic-ratelimit-*-reset`` value (RFC 3339, UTC) ``seconds`` from now."""
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_tiers_give_the_issues_figures_and_refuse_others() -> None:
    assert Limits.for_tier("free") == Limits(50, 40_000, 40_000, 60.0)
    assert Limits.for_tier("pro", window=2.0) == Limits(1_000, 400_000, 400_000, 2.0)
    with pytest.raises(ValueError, match="unknown rate-limit tier 'gold': use free or pro"):
        Limits.for_tier("gold")


def test_three_clients_queueing_20_each_share_equally_at_the_limit_and_never_over_it() -> None:
    limit = 10

    async def scenario() -> tuple[float, list[tuple[float, str]]]:
        limiter = RateLimiter(Limits(limit, PLENTY, PLENTY, window=WINDOW))
        # The window is full when the queue forms, as it is whenever anyone waits (capacity that
        # nobody waits for goes to whoever asks first).
        started = time.monotonic()
        log = []
        for _ in range(limit):
            await limiter.acquire("earlier", 100, 100)
            log.append((time.monotonic(), "earlier"))

        async def request(client: str) -> None:
            await limiter.acquire(client, 100, 100)
            log.append((time.monotonic(), client))

        # a queues all of its 20 first: first come, first served would serve a alone for two windows
        await asyncio.gather(*(request(client) for client in "abc" for _ in range(20)))
        return started, log

    started, log = asyncio.run(scenario())
    queued = [client for _, client in log[limit:]]
    first_half = Counter(queued[:30])
    assert all(abs(first_half[client] - 10) <= 2 for client in "abc"), first_half
    times = [at for at, _ in log]
    throughput = (len(times) - limit) / (times[-1] - started) * WINDOW / limit
    assert throughput >= 0.9, f"{throughput:.0%} of the limit"
    tolerance = WINDOW * 0.02  # the time a task takes to resume after its grant
    busiest = max(sum(1 for t in times if start <= t < start + WINDOW - tolerance) for start in times)
    assert busiest <= limit


def test_owners_take_turns_before_their_clients_do() -> None:
    """On a Hub: alice's three kernels together get the turns bob's one kernel gets."""

    async def scenario() -> list[tuple[str, str]]:
        limiter = RateLimiter(Limits(1, PLENTY, PLENTY, window=0.02))
        await limiter.acquire("warm-up", 0, 0)
        served = []

        async def request(owner: str, client: str) -> None:
            await limiter.acquire(client, 1, 1, owner=owner)
            served.append((owner, client))

        alice = [request("alice", kernel) for kernel in ("a1", "a2", "a3") for _ in range(4)]
        await asyncio.gather(*alice, *(request("bob", "b1") for _ in range(12)))
        return served

    served = asyncio.run(scenario())
    first_half = Counter(owner for owner, _ in served[:12])
    assert first_half == {"alice": 6, "bob": 6}, served
    alices = [client for owner, client in served if owner == "alice"][:6]
    assert Counter(alices) == {"a1": 2, "a2": 2, "a3": 2}, alices


def test_a_pause_holds_every_client_then_lets_them_go() -> None:
    async def scenario() -> tuple[float, list[float]]:
        limiter = RateLimiter(Limits(100, PLENTY, PLENTY, window=WINDOW))
        await limiter.acquire("a", 1, 1)
        paused = time.monotonic()
        limiter.pause(0.3)

        async def request(client: str) -> float:
            await limiter.acquire(client, 1, 1)
            return time.monotonic() - paused

        return paused, await asyncio.gather(*(request(client) for client in "abc"))

    _, delays = asyncio.run(scenario())
    assert all(0.29 <= delay < 0.3 + WINDOW for delay in delays), delays


def test_headers_counting_less_room_than_ours_take_effect_until_their_reset() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(Limits(10, PLENTY, PLENTY, window=4.0))
        grant = await limiter.acquire("a", 1, 1)
        limiter.observe(
            {
                "Anthropic-RateLimit-Requests-Limit": "50",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset_in(0.4),
            },
            grant=grant,
        )
        asked = time.monotonic()
        await limiter.acquire("b", 1, 1)
        return time.monotonic() - asked

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 2.0, waited  # until the upstream's reset, not our 4 s window


def test_newer_headers_replace_older_ones_even_for_a_request_already_waiting() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(Limits(10, PLENTY, PLENTY, window=4.0))
        grant = await limiter.acquire("a", 1, 1)
        exhausted = {"anthropic-ratelimit-requests-remaining": "0"}
        limiter.observe({**exhausted, "anthropic-ratelimit-requests-reset": reset_in(3.0)}, grant=grant)
        asked = time.monotonic()
        waiting = asyncio.create_task(limiter.acquire("b", 1, 1))
        await asyncio.sleep(0.05)
        limiter.observe({**exhausted, "anthropic-ratelimit-requests-reset": reset_in(0.3)}, grant=grant)
        await waiting
        return time.monotonic() - asked

    waited = asyncio.run(scenario())
    assert 0.3 <= waited < 1.5, waited  # the newer reset, not the 3 s one it replaced


def test_the_stricter_view_wins_dimension_by_dimension() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(50, 40_000, 40_000), clock)

    async def scenario() -> None:
        first = await limiter.acquire("a", 1_000, 2_000)
        await limiter.acquire("b", 500, 500)
        limiter.observe(
            {
                "anthropic-ratelimit-requests-limit": "20",  # lower than configured: it takes over
                "anthropic-ratelimit-input-tokens-remaining": "30000",  # counted before b's 500
                "anthropic-ratelimit-output-tokens-limit": "90000",  # higher: the configured ceiling stays
                "anthropic-ratelimit-output-tokens-remaining": "39000",  # more than our 37,500: ours stays
            },
            grant=first,
        )

    asyncio.run(scenario())
    snapshot = limiter.snapshot()
    assert snapshot["limits"] == {"requests": 20, "input_tokens": 40_000, "output_tokens": 40_000}
    assert snapshot["available"] == {"requests": 18, "input_tokens": 29_500, "output_tokens": 37_500}
    clock.now += 60  # no reset header: the hold lasts one window, as the reservations do
    assert limiter.snapshot()["available"] == {"requests": 20, "input_tokens": 40_000, "output_tokens": 40_000}


def test_a_cancelled_waiter_leaves_the_queue_and_its_slot_goes_to_the_next() -> None:
    async def scenario() -> tuple[float, RateLimiter, asyncio.Task]:
        limiter = RateLimiter(Limits(2, PLENTY, PLENTY, window=WINDOW))
        await limiter.acquire("a", 1, 1)
        await limiter.acquire("a", 1, 1)
        asked = time.monotonic()
        gone = asyncio.create_task(limiter.acquire("a", 1, 1))
        behind = [asyncio.create_task(limiter.acquire(client, 1, 1)) for client in "bc"]
        await asyncio.sleep(0.05)
        gone.cancel()
        await asyncio.wait_for(asyncio.gather(*behind), timeout=3 * WINDOW)
        return time.monotonic() - asked, limiter, gone

    waited, limiter, gone = asyncio.run(scenario())
    assert gone.cancelled()
    assert waited < 1.5 * WINDOW, waited  # c had the cancelled one's slot, not one a window later
    assert limiter.snapshot()["waiting"] == 0


def test_a_waiter_granted_in_the_instant_it_is_cancelled_gives_its_reservation_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(1, PLENTY, PLENTY), clock)

    async def scenario() -> asyncio.Task:
        first = await limiter.acquire("a", 1, 1)
        waiting = asyncio.create_task(limiter.acquire("b", 1, 1))
        await asyncio.sleep(0)
        limiter.release(first)  # b is granted here, synchronously ...
        waiting.cancel()  # ... and cancelled before it could send
        await asyncio.gather(waiting, return_exceptions=True)
        return waiting

    assert asyncio.run(scenario()).cancelled()
    assert limiter.snapshot()["available"]["requests"] == 1


def test_an_input_heavy_request_waits_for_token_room_not_request_room() -> None:
    async def scenario() -> tuple[dict, float]:
        limiter = RateLimiter(Limits(100, 1_000, PLENTY, window=WINDOW))
        await limiter.acquire("a", 800, 10)
        room = limiter.snapshot()["available"]
        grant = await limiter.acquire("b", 500, 10)
        return room, grant.waited

    room, waited = asyncio.run(scenario())
    assert room["requests"] == 99 and room["input_tokens"] == 200
    assert 0.9 * WINDOW <= waited < 2 * WINDOW, waited


def test_settling_frees_what_the_estimate_overstated_and_charges_what_it_missed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(100, 10_000, 10_000), clock)

    async def scenario() -> None:
        grant = await limiter.acquire("a", 1_000, 8_000)  # max_tokens reserved
        limiter.settle(grant, input_tokens=1_500, output_tokens=300)
        assert limiter.snapshot()["available"] == {"requests": 99, "input_tokens": 8_500, "output_tokens": 9_700}
        second = await limiter.acquire("b", 100, 8_000)  # fits only because the first settled
        assert second.waited == 0.0
        clock.now += 61
        limiter.settle(second, input_tokens=5_000, output_tokens=5_000)  # left the window: past correcting

    asyncio.run(scenario())
    assert limiter.snapshot()["available"] == {"requests": 100, "input_tokens": 10_000, "output_tokens": 10_000}


def test_a_request_larger_than_a_whole_window_fails_at_once_with_one_line_even_behind_a_queue() -> None:
    limiter = RateLimiter(Limits.for_tier("free"))

    async def scenario() -> None:
        await limiter.acquire("a", 39_000, 1_000)
        queued = asyncio.create_task(limiter.acquire("b", 2_000, 1_000))  # waits a minute for room
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(limiter.acquire("c", 52_000, 1_000), timeout=1.0)
        finally:
            queued.cancel()

    with pytest.raises(RequestTooLarge) as refused:
        asyncio.run(scenario())
    assert str(refused.value) == (
        "this request needs about 52,000 input tokens, more than the rate limit's 40,000 a minute, so it can "
        "never be sent: send less (fewer turns or attachments)"
    )
    assert limiter.snapshot()["available"]["requests"] == 49


def test_a_waiting_request_the_upstream_lowered_the_limit_under_fails_instead_of_waiting_forever() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(Limits(1, 10_000, PLENTY, window=30.0))
        grant = await limiter.acquire("a", 1, 1)
        waiting = asyncio.create_task(limiter.acquire("b", 6_000, 1))
        await asyncio.sleep(0)
        limiter.observe({"anthropic-ratelimit-input-tokens-limit": "5000"}, grant=grant)
        await asyncio.wait_for(waiting, timeout=1.0)

    with pytest.raises(RequestTooLarge, match="6,000 input tokens, more than the rate limit's 5,000 every 30 s"):
        asyncio.run(scenario())


def test_on_wait_hears_about_once_a_second_how_long_it_has_waited() -> None:
    heard: list[float] = []

    async def scenario() -> None:
        limiter = RateLimiter(Limits(1, PLENTY, PLENTY, window=2.3))
        await limiter.acquire("a", 1, 1)
        await limiter.acquire("b", 1, 1, on_wait=heard.append)

    asyncio.run(scenario())
    assert len(heard) == 2 and heard[0] == pytest.approx(1.0, abs=0.2) and heard[1] == pytest.approx(2.0, abs=0.3)


def test_cache_reads_do_not_count_against_the_input_limit() -> None:
    usage = {"input_tokens": 100, "cache_creation_input_tokens": 2_000, "cache_read_input_tokens": 50_000, "output_tokens": 7}
    assert counted_usage(usage) == (2_100, 7)
