"""The proxy: each kernel's requests to the Messages API, sent on with the key only the server holds.

One proxy core, two mounts: the Jupyter server extension's (its callers are the server's kernels,
admitted by :class:`KernelGate`) and the JupyterHub service's (its callers are the Hub's users,
admitted by ``claude_magic.hub.gate.HubGate``). A mount gives :class:`Proxy` a :class:`Gate`, which
turns a request into a :class:`Caller` (whose kernel, whose user, which notebook, under which
:class:`~.policy.Policy`) or refuses it; everything below is the same for both.

A kernel started by this server has ``ANTHROPIC_BASE_URL`` pointing here (``{base_url}claude-magic``)
and a token of its own (see :mod:`.kernels`). :class:`APIProxyHandler` takes a request only when

- its gate admits it: on a server, its token (``Authorization: Bearer``, or ``x-api-key``) was made
  for a kernel running on this server (the key, the server's own token and anything else get a
  401); on a Hub, a user's Hub token with the scope to use the service;
- it is one of the API's routes the package uses (:data:`ROUTES`: ``POST /v1/messages``,
  ``POST /v1/messages/count_tokens``, ``GET /v1/models``, ``GET /v1/models/{model_id}``): anything
  else is a 404, and the upstream is fixed by the configuration (no other path, host or scheme is
  ever asked: a request's ``Host`` and an absolute request target are never followed);
- its body fits :attr:`Proxy.max_request_bytes` (the API's 32 MB by default): else a 413, unread.

Before a message is sent, the caller's policy must allow its model (else a 403 naming the policy),
and the budgets are checked (:meth:`.ledger.Ledger.check`, with the request's
worst case: its estimated input tokens, by the context budget's estimate, and all of its
``max_tokens``; the ledger holds it against the budgets until the answer's real cost replaces it): a
request that could pass one is refused with a 402 whose message is the one line that names the
budget and what is left, and nothing reaches the upstream. Then it waits for its turn under the
rate limits every caller shares (:mod:`claude_magic.api.limiter`: round-robin by user, then by
kernel). A streaming request still queued after a second is answered at once with a 200 event
stream that says so once a second
(:data:`~claude_magic.api.protocol.RATE_LIMIT_WAIT` events, which the magic shows as "waiting for the
rate limit (N s)" and other clients ignore, as they ignore any event they don't know); the
upstream's events follow. Such a stream can no longer carry an error status, so from then on the
proxy does what the kernel's client would: it retries what the client would retry (the same rules,
:mod:`claude_magic.api.retries`, saying it waits meanwhile), and ends the stream with the API's
in-stream ``error`` event for the rest.

The answer is passed through as the upstream sent it: status, body, ``request-id``, ``retry-after``
and the ``anthropic-*`` headers unchanged (``Content-Type`` set, never added: a second one would
stop it being an event stream), each chunk of an event stream written and flushed as it arrives. A
spend-cap 429 (``enforced_spend_limit_reached``) gets ``x-should-retry: false``: no retry helps it;
any other 429 with ``retry-after`` holds every kernel's next request that long. When the kernel stops
reading (Stop, an interrupt, a kernel shutdown), tornado tells the handler the connection closed and
the upstream request is closed at once.

Every message request ends in one row of the ledger: user, kernel, notebook, model, usage as the
upstream counted it (read from the stream's ``message_start`` and ``message_delta`` as they pass), request-id
and status. The key appears in no log line, response or row: it is only ever put in the upstream
request's auth header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPServerRequest
from tornado.iostream import StreamClosedError

from ..api.errors import SPEND_LIMIT_REACHED
from ..api.limiter import Grant, RateLimiter, RequestTooLarge, counted_usage
from ..api.protocol import RATE_LIMIT_WAIT
from ..api.retries import retry_delay, server_retry_after, should_retry
from ..api.settings import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, MAX_REQUEST_BYTES, Credentials
from ..api.sse import ServerSentEvent, SSEDecoder
from ..core.budget import local_tokens
from ..core.pricing import cost
from .kernels import KernelTokens
from .ledger import BudgetExceeded, Ledger, Reservation
from .policy import Policy

MESSAGES = "/v1/messages"
MODEL_ID = r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}"
ROUTES: dict[tuple[str, str], re.Pattern[str]] = {
    ("POST", MESSAGES): re.compile(re.escape(MESSAGES)),
    ("POST", "/v1/messages/count_tokens"): re.compile(re.escape("/v1/messages/count_tokens")),
    ("GET", "/v1/models"): re.compile(re.escape("/v1/models")),
    ("GET", "/v1/models/{model_id}"): re.compile(re.escape("/v1/models/") + MODEL_ID),
}
"""The API routes kernels may call, by the paths the API documents, and what a call's path must be."""
MAX_RETRY_WAIT = 60.0
"""Longest ``retry-after`` the proxy waits through for a committed stream (as the client does)."""
WAIT_NOTICE_INTERVAL = 1.0
"""Seconds a streaming request waits before it is told so, and between two notices."""
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "not_found_error",
    413: "request_too_large",
}
_SENT_ON = ("content-type", "accept", "user-agent")
"""Request headers sent on besides ``anthropic-*`` and ``x-stainless-*`` (never a cookie, never auth)."""
_PASSED_BACK = ("content-type", "cache-control", "request-id", "retry-after", "retry-after-ms", "x-should-retry")
"""Response headers passed back besides ``anthropic-*``."""


def api_route(method: str, path: str) -> str | None:
    """The route ``METHOD path`` is a call of (as the API documents it), or None."""
    return next(
        (route for (verb, route), pattern in ROUTES.items() if verb == method and pattern.fullmatch(path)), None
    )


def sent_on(name: str) -> bool:
    name = name.lower()
    return name.startswith(("anthropic-", "x-stainless-")) or name in _SENT_ON


def passed_back(name: str) -> bool:
    name = name.lower()
    return name.startswith("anthropic-") or name in _PASSED_BACK


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def envelope(error_type: str, message: str, **more: Any) -> dict[str, Any]:
    """The API's error body."""
    return {"type": "error", "error": {"type": error_type, "message": message, **more}}


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries: its bearer token, else its ``x-api-key``."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


@dataclass(frozen=True)
class Estimate:
    """A message request's worst case, before it is sent: its input tokens by the context budget's
    estimate, all of its ``max_tokens``, and what that would cost."""

    model: str
    input_tokens: int
    output_tokens: int
    usd: float

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Estimate:
        model = str(body.get("model") or "")
        messages, system = body.get("messages"), body.get("system")
        try:
            input_tokens = local_tokens(
                messages if isinstance(messages, list) else [], system if isinstance(system, (str, list)) else None
            )
        except (TypeError, AttributeError, ValueError, KeyError):  # not the API's shape: the upstream will say why
            input_tokens = 0
        max_tokens = body.get("max_tokens")
        output_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else 0
        usd = cost(model, {"input_tokens": input_tokens, "output_tokens": output_tokens}) or 0.0
        return cls(model, input_tokens, output_tokens, usd)


@dataclass
class StreamUsage:
    """The model and usage of an event stream, read as its bytes pass: ``message_start``'s snapshot,
    then each ``message_delta``'s totals (which overwrite, never add).

    It runs on every chunk the proxy passes on, so it looks at little: the bytes up to the last
    blank line, for ``message_`` (the events it reads name it; the deltas of an answer rarely do),
    and decodes only the events that have it. A stream with CR line endings (never the API's) is
    decoded whole."""

    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    _tail: bytes = b""
    """What follows the last blank line seen: the start of an event still on its way."""
    _decoder: SSEDecoder | None = None

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None and b"\r" in chunk:
            self._decoder, chunk, self._tail = SSEDecoder(), self._tail + chunk, b""
        if self._decoder is not None:
            self._take(self._decoder.feed(chunk))
            return
        data = self._tail + chunk if self._tail else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._tail = data
            return
        self._tail = data[end + 2 :]
        if data.find(b"message_", 0, end) >= 0:
            blocks = [block + b"\n\n" for block in data[:end].split(b"\n\n") if b"message_" in block]
            self._take(SSEDecoder().feed(b"".join(blocks)))

    def _take(self, events: list[ServerSentEvent]) -> None:
        for event in events:
            if event.event not in ("message_start", "message_delta"):
                continue
            try:
                payload = json.loads(event.data)
            except ValueError:
                continue
            if event.event == "message_start":
                message = payload.get("message") or {}
                self.model = message.get("model") or self.model
                self.usage = dict(message.get("usage") or {})
            else:
                self.usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})


CLIENT_HEADER = "x-claude-magic-client"
"""The kernel a request comes from, as a server that forwards to a Hub service tells it (its users' fair shares)."""
NOTEBOOK_HEADER = "x-claude-magic-notebook"
"""The notebook that kernel runs (percent-encoded), for the Hub's ledger."""


@dataclass(frozen=True)
class Caller:
    """Whom a request is for: the unit of fairness (``user``, then ``client``), of accounting and of policy."""

    client: str
    """The kernel (its id), or what stands for it."""
    user: str = ""
    """The Hub user; empty on one user's server."""
    notebook: str | None = None
    policy: Policy = field(default_factory=Policy)


class Gate(Protocol):
    """What a mount of the proxy decides: who a request is for, or a :class:`Refused`."""

    async def admit(self, request: HTTPServerRequest) -> Caller: ...


@dataclass
class KernelGate:
    """The Jupyter server's gate: a token this server made for one of its running kernels."""

    tokens: KernelTokens
    kernel_running: Callable[[str], bool]
    notebook_of: Callable[[str], Awaitable[str | None]]
    """The API path of the notebook a kernel runs (its session's), if any."""

    def kernel_for(self, headers: Mapping[str, str]) -> str | None:
        """The running kernel a request's token was made for, if any."""
        kernel = self.tokens.kernel_of(bearer_token(headers))
        return kernel if kernel is not None and self.kernel_running(kernel) else None

    async def admit(self, request: HTTPServerRequest) -> Caller:
        kernel = self.kernel_for(request.headers)
        if kernel is None:
            raise Refused(
                401, "this server's Claude proxy takes only the token of a kernel it started and that is still running"
            )
        return Caller(kernel, notebook=await self.notebook_of(kernel))


@dataclass
class Proxy:
    """What every proxied request shares: the upstream and its key, the gate, the rate limiter and the ledger."""

    upstream_url: str
    credentials: Credentials
    gate: Gate
    limiter: RateLimiter
    ledger: Ledger
    tell_upstream_the_caller: bool = False
    """Send :data:`CLIENT_HEADER` and :data:`NOTEBOOK_HEADER` upstream (a Hub service shares its
    limits fairly by kernel with them)."""
    max_request_bytes: int = MAX_REQUEST_BYTES
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("claude_magic.server"))
    _client: httpx.AsyncClient | None = None

    def open(self) -> httpx.AsyncClient:
        """The one connection pool to the upstream, made when the server starts: the first request
        would otherwise pay for it (TLS contexts) after its turn under the rate limits came."""
        if self._client is None:
            timeout = httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
            self._client = httpx.AsyncClient(
                timeout=timeout, limits=httpx.Limits(max_connections=200, max_keepalive_connections=20)
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def url(self, path: str, query: str) -> str:
        return self.upstream_url.rstrip("/") + path + (f"?{query}" if query else "")

    def upstream_headers(self, headers: Any, caller: Caller) -> dict[str, str]:
        kept = {name: value for name, value in headers.get_all() if sent_on(name)}
        if self.tell_upstream_the_caller:
            kept[CLIENT_HEADER] = caller.client
            if caller.notebook is not None:
                kept[NOTEBOOK_HEADER] = quote(caller.notebook, safe="/")  # a header is ASCII; a path may not be
        return {**kept, "accept-encoding": "identity", **self.credentials.headers()}


_closing: set[asyncio.Future[None]] = set()


async def close_whatever_happens(response: httpx.Response) -> None:
    """Close an upstream response even if the kernel's hang-up cancels the relay while it closes
    (tornado signals a closed connection twice: the failed flush, then ``on_connection_close``);
    a close cut short would leave the upstream streaming to nobody."""
    closing = asyncio.ensure_future(response.aclose())
    _closing.add(closing)
    closing.add_done_callback(_closing.discard)
    await asyncio.shield(closing)


class Refused(Exception):
    """A request the proxy answers itself, with the API's error envelope."""

    def __init__(self, status: int, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")


@web.stream_request_body
class APIProxyHandler(web.RequestHandler):
    """``{base_url}claude-magic/<path>``: see the module's docstring. The token check is its own, so
    its methods are ``@allow_unauthenticated`` for the server's (which knows only the server's token)."""

    SUPPORTED_METHODS = ("GET", "POST")

    def initialize(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.caller: Caller | None = None
        self.route: str | None = None
        self.api_path = ""
        """The path under the proxy's root, as the API names it (``/v1/messages``), once checked."""
        self._body = bytearray()
        self._work: asyncio.Future[None] | None = None

    async def prepare(self) -> None:
        try:
            self.caller = await self.proxy.gate.admit(self.request)
            self._admit()
        except Refused as refused:
            self.refuse(refused)

    def _admit(self) -> None:
        self.api_path = "/" + (self.path_args[0] if self.path_args else "")
        self.route = api_route(self.request.method or "", self.api_path)
        if self.route is None:
            forwarded = ", ".join(f"{method} {route}" for method, route in ROUTES)
            raise Refused(
                404, f"{self.request.method} {self.api_path} is not a route of this proxy: it forwards {forwarded}"
            )
        length = int(self.request.headers.get("Content-Length") or 0)
        if length > self.proxy.max_request_bytes:
            raise Refused(
                413, f"the request is {length:,} bytes; this proxy takes at most {self.proxy.max_request_bytes:,}"
            )
        if isinstance(
            self.request.connection, HTTP1Connection
        ):  # a body sent in chunks, with no length: the same bound
            self.request.connection.set_max_body_size(self.proxy.max_request_bytes)

    def check_xsrf_cookie(self) -> None:
        """No cookie authenticates here (only a kernel's token, which a page can't send for it):
        there is no cross-site request to forge."""

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    @allow_unauthenticated
    async def get(self, path: str) -> None:
        await self._forward()

    @allow_unauthenticated
    async def post(self, path: str) -> None:
        await self._forward()

    async def _forward(self) -> None:
        assert self.caller is not None and self.route is not None
        relay = Relay(self, self.proxy, self.caller, self.route, bytes(self._body))
        self._body = bytearray()
        self._work = asyncio.ensure_future(relay.run())
        try:
            await self._work
        except (
            asyncio.CancelledError,
            StreamClosedError,
        ):  # the kernel stopped reading: the upstream request is closed
            self.proxy.log.debug(
                "claude-magic: kernel %s went away; its %s request was closed", self.caller, self.route
            )

    def on_connection_close(self) -> None:
        if self._work is not None:
            self._work.cancel()

    def refuse(self, refused: Refused) -> None:
        """Answer with the API's error envelope; the client must not retry a refusal (a 4xx), and
        retries an unreachable upstream (502) as it would retry the API."""
        self.set_status(refused.status)
        self.set_header("Content-Type", "application/json")
        if refused.status < 500:
            self.set_header("x-should-retry", "false")
        self.finish(json.dumps(envelope(refused.error_type, refused.message)))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """What tornado answers by itself (a method this proxy doesn't take) as the API would."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(envelope(ERROR_TYPES.get(status_code, "api_error"), self._reason)))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, StreamClosedError):  # a kernel that hangs up is part of the job
            return
        super().log_exception(typ, value, tb)


class Relay:
    """One request on its way to the upstream and its answer on the way back."""

    def __init__(self, handler: APIProxyHandler, proxy: Proxy, caller: Caller, route: str, body: bytes) -> None:
        self.handler, self.proxy, self.caller, self.route, self.body = handler, proxy, caller, route, body
        self.committed = False
        """The kernel has been answered 200 with an event stream already (see :meth:`_tell_waiting`):
        from then on the proxy retries what the kernel's client would have (as it would)."""
        self.arrived = time.monotonic()
        self.attempt = 0
        self.may_retry = False
        self.grant: Grant | None = None
        """The message's turn under the rate limits (None for the other routes)."""
        self.retry_in: float | None = None
        """Seconds to wait before the next attempt at a committed stream's message."""
        self.status = 0
        self.request_id: str | None = None
        self.usage: dict[str, Any] = {}
        self.model: str | None = None

    async def run(self) -> None:
        try:
            if self.route == MESSAGES:
                await self._message()
            else:
                await self._send(self.handler.request.method or "GET")
        except Refused as refused:
            self._answer_refusal(refused)

    # --- a message: budget, turn, send, account -----------------------------------------------

    async def _message(self) -> None:
        body = self._json_body()
        estimate = Estimate.of(body)
        self.model = estimate.model
        policy = self.caller.policy
        if not policy.allows(estimate.model):
            raise Refused(403, policy.refusal(estimate.model, self.caller.user))
        streaming = body.get("stream") is True
        for self.attempt in range(DEFAULT_MAX_RETRIES + 1):
            self.retry_in = None
            await self._attempt(estimate, streaming, may_retry=self.attempt < DEFAULT_MAX_RETRIES)
            if self.retry_in is None:
                return
            await self._wait_telling(self.retry_in)

    async def _attempt(self, estimate: Estimate, streaming: bool, *, may_retry: bool) -> None:
        """Send the message once: the budgets, a turn under the rate limits, the upstream, the ledger."""
        caller = self.caller
        try:
            reservation = self.proxy.ledger.check(
                estimate.usd, user=caller.user, budgets=caller.policy.budgets, owner=caller.policy.owner(caller.user)
            )
        except BudgetExceeded as over:
            raise Refused(402, str(over)) from None
        try:
            grant = await self._turn(estimate, streaming=streaming)
        except BaseException:
            reservation.release()
            raise
        self.status, self.usage, self.may_retry, self.grant = 0, {}, may_retry, grant
        try:
            await self._send("POST")
        finally:
            self._account(grant, reservation)

    def _json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "the request body is not a JSON object")
        return body

    async def _turn(self, estimate: Estimate, *, streaming: bool) -> Grant:
        """Wait for room under the rate limits; a streaming request waiting more than a second is
        told so, once a second."""
        waiting = asyncio.ensure_future(
            self.proxy.limiter.acquire(
                self.caller.client, estimate.input_tokens, estimate.output_tokens, owner=self.caller.user
            )
        )
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=WAIT_NOTICE_INTERVAL)
                if done:
                    return waiting.result()
                if streaming:
                    await self._tell_waiting()
        except RequestTooLarge as too_large:
            raise Refused(413, str(too_large)) from None
        finally:
            if not waiting.done():
                waiting.cancel()

    async def _tell_waiting(self) -> None:
        if not self.committed:
            self._start_event_stream(200)
        waited = time.monotonic() - self.arrived
        self.handler.write(sse_event(RATE_LIMIT_WAIT, {"type": RATE_LIMIT_WAIT, "waited": round(waited, 1)}))
        await self.handler.flush()

    async def _wait_telling(self, seconds: float) -> None:
        """Wait before another attempt, telling the kernel (whose stream is committed) once a second."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, WAIT_NOTICE_INTERVAL))
            await self._tell_waiting()

    def _account(self, grant: Grant, reservation: Reservation) -> None:
        """The request is over: the limiter gets its real usage, the ledger its row (and the
        budgets the real cost in place of the estimate)."""
        limiter = self.proxy.limiter
        if self.status == 0:  # it never reached the upstream
            limiter.release(grant)
            reservation.release()
            return
        input_tokens, output_tokens = counted_usage(self.usage)
        limiter.settle(grant, input_tokens=input_tokens, output_tokens=output_tokens)
        try:
            self.proxy.ledger.record(
                user=self.caller.user,
                kernel=self.caller.client,
                notebook=self.caller.notebook,
                model=self.model or "",
                usage=self.usage,
                request_id=self.request_id,
                status=self.status,
                reservation=reservation,
            )
        except Exception:
            reservation.release()
            self.proxy.log.exception("claude-magic: the ledger could not record a request of %s", self.caller)

    # --- the upstream ---------------------------------------------------------------------------

    async def _send(self, method: str) -> None:
        request = self.handler.request
        client = self.proxy.open()
        url = self.proxy.url(self.handler.api_path, request.query)
        headers = self.proxy.upstream_headers(request.headers, self.caller)
        upstream = client.build_request(method, url, content=self.body if method == "POST" else None, headers=headers)
        sent = time.monotonic()
        try:
            response = await client.send(upstream, stream=True)
        except httpx.TransportError as exc:
            self.status = 0
            if self.committed and self.may_retry:  # as the client retries a connection that failed
                self.retry_in = retry_delay({}, self.attempt)
                return
            raise Refused(
                502,
                f"the Jupyter server could not reach {self.proxy.upstream_url} ({type(exc).__name__})",
                error_type="api_error",
            ) from None
        try:
            self.status, self.request_id = response.status_code, response.headers.get("request-id")
            self.proxy.log.debug(
                "claude-magic: kernel %s %s %s: sent at %.3f, %.3f s after it came; the upstream answered %d in %.3f s",
                self.caller.client, method, self.route, sent, sent - self.arrived, self.status, time.monotonic() - sent,
            )  # fmt: skip
            self.proxy.limiter.observe(response.headers, grant=self.grant)
            if response.is_success and response.headers.get("content-type", "").startswith("text/event-stream"):
                await self._pass_stream(response)
            else:
                await self._pass_whole(response)
        finally:
            await close_whatever_happens(response)

    async def _pass_stream(self, response: httpx.Response) -> None:
        if not self.committed:
            self._start_event_stream(response.status_code, response.headers)
        reader = StreamUsage()
        handler = self.handler
        try:
            async for chunk in response.aiter_raw():
                reader.feed(chunk)
                handler.write(chunk)
                await handler.flush()
        finally:
            self.usage, self.model = reader.usage, reader.model or self.model
        handler.finish()

    async def _pass_whole(self, response: httpx.Response) -> None:
        content = await response.aread()
        body = _json_or_none(content)
        extra: dict[str, str] = {}
        if response.status_code == 429:
            extra = self._after_rate_limit(response, body)
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            self.usage, self.model = dict(body["usage"]), body.get("model") or self.model
        if (
            self.committed
        ):  # the kernel has a 200 event stream already: retry as it would have, or end it with the error
            if self.may_retry and (delay := self._retry_delay(response, body)) is not None:
                self.retry_in = delay
                return
            self._end_stream_with_error(body, response.status_code)
            return
        handler = self.handler
        handler.set_status(response.status_code)
        for name, value in response.headers.multi_items():
            if passed_back(name):
                handler.set_header(name, value)
        for name, value in extra.items():
            handler.set_header(name, value)
        handler.finish(content)

    def _retry_delay(self, response: httpx.Response, body: Any) -> float | None:
        """How long to wait before trying a committed stream's message again, as the kernel's
        client would (:mod:`claude_magic.api.retries`); None when it would not retry."""
        if _spend_cap(body) or not should_retry(response.status_code, response.headers):
            return None
        delay = retry_delay(response.headers, self.attempt)
        return delay if delay <= MAX_RETRY_WAIT else None

    def _after_rate_limit(self, response: httpx.Response, body: Any) -> dict[str, str]:
        """An upstream 429: a spend cap is final (``x-should-retry: false``); a rate limit's
        ``retry-after`` holds every kernel's next request."""
        if _spend_cap(body):
            return {"x-should-retry": "false"}
        wait = server_retry_after(response.headers)
        if wait:
            self.proxy.limiter.pause(wait)
        return {}

    # --- what goes back ---------------------------------------------------------------------------

    def _start_event_stream(self, status: int, headers: httpx.Headers | None = None) -> None:
        handler = self.handler
        handler.set_status(status)
        for name, value in headers.multi_items() if headers is not None else []:
            if passed_back(name):
                handler.set_header(name, value)
        handler.set_header(
            "Content-Type", headers.get("content-type") if headers is not None else "text/event-stream; charset=utf-8"
        )
        handler.set_header("Cache-Control", "no-cache")
        self.committed = True

    def _end_stream_with_error(self, body: Any, status: int) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            error = {"type": ERROR_TYPES.get(status, "api_error"), "message": f"the API answered {status}"}
        self.handler.finish(sse_event("error", {"type": "error", "error": error, "request_id": self.request_id}))

    def _answer_refusal(self, refused: Refused) -> None:
        if self.committed:
            self._end_stream_with_error(envelope(refused.error_type, refused.message), refused.status)
        else:
            self.handler.refuse(refused)


def _spend_cap(body: Any) -> bool:
    """The upstream's 429 says the organisation's spend cap is reached (no retry helps)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return isinstance(details, dict) and details.get("error_code") == SPEND_LIMIT_REACHED


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


class UsageHandler(JupyterHandler):
    """``GET {base_url}claude-magic/usage``: the ledger's figures as JSON, for the server's users
    (its own auth) and for its kernels (their token: ``%claude usage --all``)."""

    def initialize(self, proxy: Proxy, gate: KernelGate) -> None:
        self.proxy, self.gate = proxy, gate

    @allow_unauthenticated
    def get(self) -> None:
        if self.current_user is None and self.gate.kernel_for(self.request.headers) is None:
            raise web.HTTPError(403)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.proxy.ledger.summary()))
