"""A rate limiter for the clients of one API key: requests, input tokens and output tokens a window.

It sits in the API layer because two parts of the package pace requests with it: the Jupyter
server's proxy, one limiter for every kernel (its clients are kernels), and a kernel asking many
rows at once without that server (its clients are jobs).

The API limits an organisation's requests, input tokens and output tokens per minute (RPM, ITPM,
OTPM; protocol notes §5). Kernels that each send and retry on their own draw 429s together, so the
server lets a request go only when it fits all three limits; one that doesn't fit waits here, in a
fair queue, instead of being sent.

**The algorithm: a sliding window of reservations.** A request let through reserves one request,
its estimated input tokens and its output tokens (its ``max_tokens``: the API also counts a
request's output against OTPM from the start and corrects it at the end) for one window from the
moment it went. A request goes when the reservations of the last window leave room for it in every
dimension. The API's own limiter is a token bucket that refills continuously up to the limit; we
keep a window rather than a bucket of our own, deliberately:

- A window never lets more than the limit through in any stretch of its length, and whatever it
  lets through a continuously refilling bucket of the same limit accepts too (over any ``t``
  seconds it sends at most ``ceil(t / window) × limit ≤ limit + t × rate``). So it draws no 429 from
  a bucket-shaped upstream nor from a window-shaped one (a gateway, the stand-in). Our own bucket
  would match the API's only if both were full at the same moment, which we can't know: after an
  idle minute it would send twice the limit in the first minute and count on the API's bucket
  agreeing.
- A reservation leaves the window at a known moment, so :meth:`RateLimiter.settle` can correct it
  in place: the real usage replaces the estimate as if it had been known when the request went.
- Throughput stays at the limit: each window lets the whole limit through. The price is a burst
  after an idle spell, held to one limit where the API's bucket would take up to two.

Costs: the reservations sit in a deque in the order they were made, each appended once and aged
out once (amortised O(1)); running totals per dimension make "does it fit" O(1); a waiting queue
sets one timer, for the next moment something changes (the oldest reservation ages out, a hold or
the pause ends), and never polls. Nothing grows with the history: at most one window of
reservations is kept.

**Fairness: round-robin by owner, then by client** (a Hub's users, then each user's kernels; on one
user's server every client has the same owner). Each client has its own first-in-first-out queue;
the owners with waiting requests take turns, and within an owner its clients do: the request at the
head of the turn goes as soon as it fits, then its client moves to the back of its owner's turns and
its owner to the back of everyone's. Nobody overtakes the head, so a large request is never starved
by a stream of small ones; a client that queues 20 requests gets one turn in N, not 20, and a user
with five kernels gets one turn among the users, not five.
A waiting request that is cancelled (its kernel went away) is dropped where it stands and never
takes capacity.

**Live corrections from the upstream** (:meth:`RateLimiter.observe`): the
``anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset}`` headers of each
response. The configured limits are a ceiling: a lower ``-limit`` from the upstream takes over. A
``-remaining`` lower than what we count becomes a hold of the difference until that family's
``-reset`` (at most one window); a higher one changes nothing: the more careful view wins. The
``tokens`` family (the stricter of the two, rounded to thousands) adds nothing to these. An upstream
429's ``retry-after`` holds every client (:meth:`RateLimiter.pause`). The API's limits are per model
class; a server that mixes classes heavily may keep one limiter per class.

Everything runs on the event loop's thread (the Jupyter server's, or the kernel's, asyncio loop): no locks, no threads.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TIERS: dict[str, tuple[int, int]] = {"free": (50, 40_000), "pro": (1_000, 400_000)}
"""Requests and tokens a minute by tier (the issue's figures; input and output tokens each have the
token figure). The headers of the first response correct whichever is too high."""

DIMENSIONS = ("requests", "input tokens", "output tokens")
HEADER_FAMILIES = ("requests", "input-tokens", "output-tokens")
ON_WAIT_INTERVAL = 1.0
"""Seconds between two calls of an ``acquire``'s ``on_wait`` while it waits."""

Amounts = tuple[int, int, int]
"""Requests, input tokens, output tokens."""


@dataclass(frozen=True)
class Limits:
    """What the upstream allows per window (a minute, unless tests scale it down)."""

    requests: int
    input_tokens: int
    output_tokens: int
    window: float = 60.0

    def __post_init__(self) -> None:
        if min(self.requests, self.input_tokens, self.output_tokens) < 1 or not self.window > 0:
            raise ValueError(f"rate limits must be positive: {self}")

    @classmethod
    def for_tier(cls, tier: str, window: float = 60.0) -> Limits:
        try:
            requests, tokens = TIERS[tier]
        except KeyError:
            raise ValueError(f"unknown rate-limit tier {tier!r}: use {' or '.join(TIERS)}, or explicit limits") from None
        return cls(requests, tokens, tokens, window)

    def amounts(self) -> Amounts:
        return (self.requests, self.input_tokens, self.output_tokens)


class RequestTooLarge(ValueError):
    """A request bigger than a whole window's limit: it could never be sent, so it is refused at once."""

    def __init__(self, dimension: str, needed: int, limit: int, window: float) -> None:
        self.dimension, self.needed, self.limit = dimension, needed, limit
        per = "a minute" if window == 60 else f"every {window:g} s"
        super().__init__(
            f"this request needs about {needed:,} {dimension}, more than the rate limit's {limit:,} {per}, "
            f"so it can never be sent: {_SMALLER.get(dimension, 'make it smaller')}"
        )


_SMALLER = {"input tokens": "send less (fewer turns or attachments)", "output tokens": "ask for a lower max_tokens"}


@dataclass(eq=False, slots=True)
class _Reservation:
    """What one request holds of the window, from ``at`` until ``at + window``."""

    at: float
    amounts: list[int]
    granted_through: Amounts
    """The running totals of everything granted, this included, when it was (see ``observe``)."""
    expired: bool = False


@dataclass
class Grant:
    """A request let through: what it reserved, and how long it queued."""

    client: str
    input_tokens: int
    output_tokens: int
    waited: float
    _reservation: _Reservation | None = field(default=None, repr=False, compare=False)


@dataclass(eq=False, slots=True)
class _Waiter:
    owner: str
    client: str
    amounts: Amounts
    future: asyncio.Future[_Reservation]
    gone: bool = False
    """Cancelled while waiting: dropped when it reaches the head of its client's queue."""


@dataclass(slots=True)
class _Hold:
    """Capacity the upstream says is used beyond what we reserved, until ``until``."""

    amount: int = 0
    until: float = -math.inf


def counted_usage(usage: Mapping[str, Any]) -> tuple[int, int]:
    """The input and output tokens of a response's ``usage`` that count against the rate limits.

    Cache reads don't count towards the input limit (protocol notes §5); cache writes do.
    """
    counted_input = (usage.get("input_tokens") or 0) + (usage.get("cache_creation_input_tokens") or 0)
    return counted_input, usage.get("output_tokens") or 0


class RateLimiter:
    """One limiter for all kernels: ``acquire`` before sending, ``settle`` when the response ended.

    The proxy's part: ``grant = await acquire(kernel, estimated_input, max_tokens, on_wait)``; then
    ``observe(response_headers, grant=grant)`` as the headers arrive; ``settle(grant, ...)`` with the
    real usage (:func:`counted_usage`) when the response ended (an error without usage: zero tokens,
    the request itself still counts), or ``release(grant)`` if the request was never sent;
    ``pause(retry_after)`` on an upstream 429.
    """

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._limits = list(limits.amounts())
        """In effect: the configured ones, or lower ones the upstream announced."""
        self._reservations: deque[_Reservation] = deque()
        self._reserved = [0, 0, 0]
        self._granted_total = [0, 0, 0]
        self._holds = [_Hold(), _Hold(), _Hold()]
        self._paused_until = -math.inf
        self._queues: OrderedDict[str, OrderedDict[str, deque[_Waiter]]] = OrderedDict()
        """Owner -> client -> waiting requests, each level in turn order."""
        self._waiting = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    # --- the proxy's calls ----------------------------------------------------------------------

    async def acquire(
        self,
        client: str,
        input_tokens: int,
        output_tokens: int,
        on_wait: Callable[[float], None] | None = None,
        *,
        owner: str = "",
    ) -> Grant:
        """Wait for a turn and for room in every limit; then the request holds its reservation.

        Raises :class:`RequestTooLarge` at once for a request no window could hold. Cancelling the
        waiting call takes it out of the queue without a trace.
        """
        amounts: Amounts = (1, max(input_tokens, 0), max(output_tokens, 0))
        self._refuse_if_too_large(amounts)
        started = self._clock()
        self._age(started)
        if not self._waiting and self._may_go(amounts, started):
            return Grant(client, input_tokens, output_tokens, 0.0, self._reserve(amounts, started))
        waiter = self._enqueue(owner, client, amounts)
        self._dispatch()
        try:
            reservation = await self._wait(waiter, started, on_wait)
        except BaseException:
            self._abandon(waiter)
            raise
        return Grant(client, input_tokens, output_tokens, self._clock() - started, reservation)

    def settle(self, grant: Grant, *, input_tokens: int, output_tokens: int) -> None:
        """The real usage once the response ended: replaces the estimate, freeing or charging the difference.

        A reservation that already left the window is past correcting (the usage is outside it too).
        """
        self._correct(grant, [1, max(input_tokens, 0), max(output_tokens, 0)])

    def release(self, grant: Grant) -> None:
        """The request was never sent (refused, or its kernel went away first): give its reservation back."""
        self._correct(grant, [0, 0, 0])

    def observe(self, headers: Mapping[str, str], *, grant: Grant | None = None) -> None:
        """Correct the counts from the upstream's ``anthropic-ratelimit-*`` headers (see the module's docstring).

        ``grant``: the request these headers answer. What was granted after it the upstream had not
        seen when it counted, so its ``remaining`` is lowered by that much.
        """
        now = self._clock()
        self._age(now)
        headers = {name.lower(): value for name, value in headers.items()}
        answered = grant._reservation if grant is not None else None
        for dimension, family in enumerate(HEADER_FAMILIES):
            limit = _header_int(headers, f"anthropic-ratelimit-{family}-limit")
            if limit is not None and limit > 0:
                self._limits[dimension] = min(limit, self.limits.amounts()[dimension])
            remaining = _header_int(headers, f"anthropic-ratelimit-{family}-remaining")
            if remaining is None:
                continue
            if answered is not None:
                remaining -= self._granted_total[dimension] - answered.granted_through[dimension]
            excess = self._limits[dimension] - self._reserved[dimension] - max(remaining, 0)
            until = self._reset_time(headers.get(f"anthropic-ratelimit-{family}-reset"), now)
            self._holds[dimension] = _Hold(excess, until) if excess > 0 else _Hold()
        self._dispatch()

    def pause(self, seconds: float) -> None:
        """Hold every client's next request for ``seconds`` (an upstream 429's ``retry-after``)."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._dispatch()

    def snapshot(self) -> dict[str, Any]:
        """The limits in effect, what is free of them now, and the queue (JSON-ready, for a status page)."""
        now = self._clock()
        self._age(now)
        names = ("requests", "input_tokens", "output_tokens")
        return {
            "window": self.limits.window,
            "limits": dict(zip(names, self._limits)),
            "available": {name: self._free(d, now) for d, name in enumerate(names)},
            "waiting": self._waiting,
            "paused_for": max(self._paused_until - now, 0.0),
        }

    # --- the window ---------------------------------------------------------------------------------

    def _free(self, dimension: int, now: float) -> int:
        hold = self._holds[dimension]
        held = hold.amount if hold.until > now else 0
        return self._limits[dimension] - self._reserved[dimension] - held

    def _may_go(self, amounts: Amounts, now: float) -> bool:
        if now < self._paused_until:
            return False
        return all(amount == 0 or amount <= self._free(d, now) for d, amount in enumerate(amounts))

    def _age(self, now: float) -> None:
        """Drop the reservations that left the window."""
        window = self.limits.window
        while self._reservations and self._reservations[0].at + window <= now:
            gone = self._reservations.popleft()
            gone.expired = True
            for d, amount in enumerate(gone.amounts):
                self._reserved[d] -= amount

    def _reserve(self, amounts: Amounts, now: float) -> _Reservation:
        for d, amount in enumerate(amounts):
            self._reserved[d] += amount
            self._granted_total[d] += amount
        requests, input_tokens, output_tokens = self._granted_total
        reservation = _Reservation(now, list(amounts), (requests, input_tokens, output_tokens))
        self._reservations.append(reservation)
        return reservation

    def _correct(self, grant: Grant, amounts: list[int]) -> None:
        self._age(self._clock())
        reservation = grant._reservation
        if reservation is None or reservation.expired:
            return
        for d, amount in enumerate(amounts):
            self._reserved[d] += amount - reservation.amounts[d]
        reservation.amounts = amounts
        self._dispatch()

    def _refuse_if_too_large(self, amounts: Amounts) -> None:
        for d, amount in enumerate(amounts):
            if amount > self._limits[d]:
                raise RequestTooLarge(DIMENSIONS[d], amount, self._limits[d], self.limits.window)

    def _reset_time(self, header: str | None, now: float) -> float:
        """When a family's ``-reset`` (RFC 3339) falls, on our clock; within one window from now."""
        window_end = now + self.limits.window
        reset = _epoch_seconds(header) if header else None
        if reset is None:
            return window_end
        return min(max(now + reset - time.time(), now), window_end)

    # --- the queue ----------------------------------------------------------------------------------

    def _enqueue(self, owner: str, client: str, amounts: Amounts) -> _Waiter:
        waiter = _Waiter(owner, client, amounts, asyncio.get_running_loop().create_future())
        self._queues.setdefault(owner, OrderedDict()).setdefault(client, deque()).append(waiter)
        self._waiting += 1
        return waiter

    async def _wait(self, waiter: _Waiter, started: float, on_wait: Callable[[float], None] | None) -> _Reservation:
        interval = ON_WAIT_INTERVAL if on_wait is not None else None
        while True:
            done, _ = await asyncio.wait({waiter.future}, timeout=interval)
            if done:
                return waiter.future.result()
            assert on_wait is not None
            on_wait(self._clock() - started)

    def _abandon(self, waiter: _Waiter) -> None:
        """The waiting call ended without its reservation: cancelled, or ``on_wait`` failed."""
        future = waiter.future
        if not future.done():
            waiter.gone = True
            self._waiting -= 1
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            # granted in the same instant it was cancelled: nobody will send it
            self._correct(Grant(waiter.client, 0, 0, 0.0, future.result()), [0, 0, 0])
        self._dispatch()

    def _head(self) -> _Waiter | None:
        """The request whose turn it is (cancelled ones are dropped on the way)."""
        while self._queues:
            owner, clients = next(iter(self._queues.items()))
            while clients:
                client, queue = next(iter(clients.items()))
                while queue and queue[0].gone:
                    queue.popleft()
                if queue:
                    return queue[0]
                del clients[client]
            del self._queues[owner]
        return None

    def _next_turn(self) -> None:
        """The head's client had its turn: it goes to the back of its owner's rotation, and its owner
        to the back of everyone's."""
        owner, clients = next(iter(self._queues.items()))
        client, queue = next(iter(clients.items()))
        queue.popleft()
        self._waiting -= 1
        if queue:
            clients.move_to_end(client)
        else:
            del clients[client]
        if clients:
            self._queues.move_to_end(owner)
        else:
            del self._queues[owner]

    def _dispatch(self) -> None:
        """Let through every request whose turn it is and that fits; else wake up when that may change."""
        now = self._clock()
        self._age(now)
        while (waiter := self._head()) is not None:
            try:
                self._refuse_if_too_large(waiter.amounts)  # a limit the upstream lowered under it
            except RequestTooLarge as refused:
                self._next_turn()
                waiter.future.set_exception(refused)
                continue
            if not self._may_go(waiter.amounts, now):
                self._wake_at(self._next_change(now), waiter.future.get_loop())
                return
            self._next_turn()
            waiter.future.set_result(self._reserve(waiter.amounts, now))
        # An empty queue keeps any wake-up already set: it finds nothing to do, and a queue that forms
        # again soon (the usual case) needs no new one.

    def _next_change(self, now: float) -> float:
        moments = [self._paused_until] + [hold.until for hold in self._holds]
        if self._reservations:
            moments.append(self._reservations[0].at + self.limits.window)
        later = [moment for moment in moments if moment > now]
        return min(later) if later else now

    def _wake_at(self, moment: float, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            if self._timer_at <= moment and self._timer_loop is loop:
                return  # an earlier wake-up looks again then
            self._timer.cancel()
        self._timer_at, self._timer_loop = moment, loop
        self._timer = loop.call_later(max(moment - self._clock(), 0.0), self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._dispatch()


@functools.lru_cache(maxsize=16)
def _epoch_seconds(rfc3339: str) -> float | None:
    """An RFC 3339 time as seconds since the epoch (the three families' ``-reset`` often repeat one)."""
    try:
        return datetime.fromisoformat(rfc3339.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except (ValueError, OverflowError):
        return None
