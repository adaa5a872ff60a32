"""A kernel pacing its own requests under the API's rate limits: an httpx transport in front of the real one.

A job over many rows (:mod:`claude_magic.core.rows`) sends requests concurrently. Behind the
Jupyter server's proxy, the proxy paces every kernel; without it, the kernel paces itself with a
:class:`~.limiter.RateLimiter` here. Each message request waits for room in the window before it
goes; each response's ``anthropic-ratelimit-*`` headers correct the limiter; a 429's ``retry-after``
holds every request; a request that failed keeps only its request count. Being a transport, it
paces the client's retries as it paces first attempts.

Requests are also spread evenly: one at most every ``window / requests`` seconds. The window lets a
whole minute's requests through at once, and the API enforces its limits over shorter spans too
(a limit of 60 a minute may be held as 1 a second), so a burst at the start of each window would
draw 429s; spread out, the same number goes in the minute and none arrives in a burst. Turns are
kept on a schedule (a late wake-up does not push the next turn back), but a stall of the event
loop lets at most one late request catch up when it ends, not all those it held.

What a request will use is told by whoever sends it, in a context variable (:data:`PACE`): its
estimated input tokens and its ``max_tokens``, and where the grant goes so that the sender can
settle it with the real usage once the answer has ended (reading the body here would cost a copy
of it, and the usage comes at the end of the stream, which the transport does not read).
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from dataclasses import dataclass

import httpx

from .limiter import Grant, RateLimiter
from .retries import server_retry_after

MESSAGES_PATH = "/v1/messages"


@dataclass
class Pace:
    """What the next message request of this context will use, and its grant once it succeeded."""

    input_tokens: int
    output_tokens: int
    grant: Grant | None = None


PACE: ContextVar[Pace | None] = ContextVar("claude_magic_pace", default=None)
"""Set by a sender around its requests; requests sent without it are not paced."""


class PacedTransport(httpx.AsyncBaseTransport):
    """Message requests wait for ``limiter`` before going through ``inner``; others go at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limiter: RateLimiter, client: str = "rows") -> None:
        self.inner, self.limiter, self.client = inner, limiter, client
        self.waiting = 0
        """Requests waiting for room in the rate limits right now (for a progress display)."""
        self.rate_limited = 0
        """429s the upstream answered all the same."""
        self._next_send = 0.0
        self._gate = asyncio.Lock()
        """Requests take their turns one at a time, in order: only the one whose turn is next waits on a timer."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pace = PACE.get()
        if pace is None or request.method != "POST" or not request.url.path.endswith(MESSAGES_PATH):
            return await self.inner.handle_async_request(request)
        self.waiting += 1
        try:
            grant = await self.limiter.acquire(self.client, pace.input_tokens, pace.output_tokens)
            await self._take_turn()
        finally:
            self.waiting -= 1
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.limiter.settle(grant, input_tokens=0, output_tokens=0)
            raise
        self.limiter.observe(response.headers, grant=grant)
        if response.status_code < 400:
            pace.grant = grant
            return response
        self.limiter.settle(grant, input_tokens=0, output_tokens=0)
        if response.status_code == 429:
            self.rate_limited += 1
            self.limiter.pause(server_retry_after(response.headers) or 0.0)
        return response

    async def _take_turn(self) -> None:
        """Wait for this request's turn: ``window / requests`` seconds after the last one's."""
        async with self._gate:
            delay = self._next_send - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            limits = self.limiter.snapshot()
            interval = limits["window"] / max(limits["limits"]["requests"], 1)
            self._next_send = max(self._next_send, time.monotonic() - interval) + interval

    async def aclose(self) -> None:
        await self.inner.aclose()
