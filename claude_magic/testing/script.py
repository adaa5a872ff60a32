"""Scripting the stand-in: faults, replies and tool calls for the next calls, what it records,
and the state the HTTP handler answers from (see :mod:`.handler`)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .answers import text_of_content
from .batches import BatchQueue
from .cache import PromptCache
from .models import MODELS
from .server_tools import WebScript
from .structured import sample_arguments

API_ROUTES = (
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v1/models/{model_id}",
    "/v1/messages/batches",
    "/v1/messages/batches/{message_batch_id}",
    "/v1/messages/batches/{message_batch_id}/cancel",
    "/v1/messages/batches/{message_batch_id}/results",
)
"""The routes the stand-in serves, by the paths the API documents (``{name}``: one path segment)."""
_STREAM_FAULT_FIELDS = ("error_after", "drop_after", "delay")


@dataclass
class Fault:
    """A scripted failure for one call of a route (``/v1/messages`` unless told otherwise).

    ``status``: answer with this HTTP error instead (``retry_after`` / ``retry_after_ms`` /
    ``should_retry`` set the matching headers; a ``retry_after`` datetime is sent as an HTTP
    date; ``error_code`` goes in the envelope's ``details``, as the API's spend cap,
    ``enforced_spend_limit_reached``, does). ``error_after`` / ``drop_after``: send that many text deltas, then an ``error``
    event (of ``error_type``) or drop the connection. ``delay``: seconds between deltas (slow
    tokens). ``stall``: seconds to wait before answering at all (to provoke a client timeout).
    The three stream fields apply to ``/v1/messages`` only.
    """

    status: int | None = None
    error_type: str | None = None
    message: str | None = None
    retry_after: float | datetime | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None
    error_code: str | None = None
    error_after: int | None = None
    drop_after: int | None = None
    delay: float | None = None
    stall: float | None = None


@dataclass
class Reply:
    """A scripted answer for one ``/v1/messages`` call answered in text (a scripted tool call
    takes none), for what a model or a server may send that the stand-in would not make up:
    any field left ``None`` is generated as usual (and the request's limits still apply).

    ``text``: the answer's text. ``thinking``: the thinking text, when the request asks for
    thinking. ``model``: the model id the message reports. ``stop_reason``: the reason it gives."""

    text: str | None = None
    thinking: str | None = None
    model: str | None = None
    stop_reason: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    answer: str | None = None
    """The answer text the stand-in generated for it (sent whole, or in part on a fault)."""
    size: int = 0
    """Bytes in the body, as its ``Content-Length`` says (also for one refused as too large,
    whose ``body`` is None: the API reads none of it)."""
    digest: str = ""
    """SHA-256 of the body's bytes as sent (to tell byte-identical requests apart from equal ones)."""
    received: float = field(default_factory=time.monotonic)
    """When its headers arrived (``time.monotonic``)."""
    ended: float | None = None
    """When its answer ended: sent whole, failed, or its client gone (``time.monotonic``)."""
    status: int | None = None
    """The status it was answered with."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    def prompts(self) -> list[str]:
        """The text of every user turn, oldest first."""
        return [text_of_content(m["content"]) for m in self.messages if m.get("role") == "user"]


@dataclass(frozen=True)
class RequestLimit:
    """A rate limit the stand-in enforces on ``/v1/messages``, as the API does: at most
    ``requests`` in any ``window`` seconds; over it, a 429 with ``retry-after``. ``slack``: seconds of
    the window forgiven, for clocks of two processes (a client's limiter and the stand-in)."""

    requests: int
    window: float = 60.0
    slack: float = 0.1


@dataclass
class Script:
    """What the stand-in answers and records: scripted faults, replies and tool calls, the
    catalogue of models, the prompt cache, and every request received. The HTTP handler reads
    and writes it; :class:`~claude_magic.testing.StandIn` adds the server around it."""

    api_key: str | None = field(default=None, repr=False)
    """When set, only this key is accepted; otherwise any non-empty key is."""
    delay: float = 0.0
    """Default seconds between deltas."""
    events_per_chunk: int = 64
    """Most events sent in one HTTP chunk when they are ready together (1: a chunk each)."""
    tool_calls: deque[tuple[str, dict[str, Any]]] = field(default_factory=deque, repr=False)
    """Scripted tool calls: each request that offers tools takes the next one and answers with
    that ``tool_use``; with none left it answers in text (reporting the tool results it got).
    Unscripted, a question offering tools gets one call of the first tool."""
    scripted_calls_need_tools: bool = True
    """False: a scripted tool call answers a request that offers no tools too (a client must
    cope with a ``tool_use`` it never asked for)."""
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    models: list[dict[str, Any]] = field(default_factory=lambda: list(MODELS), repr=False)
    """The catalogue ``/v1/models`` lists and requests may name, newest first (a test may add one)."""
    cache: PromptCache = field(default_factory=PromptCache, repr=False)
    """Prefixes marked with ``cache_control`` that requests have carried (see :mod:`.cache`)."""
    web: WebScript = field(default_factory=WebScript, repr=False)
    """What web searches and fetches find, what MCP servers answer, and whether answers that
    ran them pause (see :mod:`.server_tools`)."""
    batches: BatchQueue = field(default_factory=BatchQueue, repr=False)
    """Message Batches, and the clock they run on (see :mod:`.batches`)."""
    _faults: defaultdict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque), repr=False)
    _faults_by_call: dict[tuple[str, int], Fault] = field(default_factory=dict, repr=False)
    _calls: Counter[str] = field(default_factory=Counter, repr=False)
    _replies: deque[Reply] = field(default_factory=deque, repr=False)
    _active: int = field(default=0, repr=False)
    max_concurrent: int = field(default=0, repr=False)
    """The most ``/v1/messages`` requests seen in flight at once."""
    request_limit: RequestLimit | None = None
    """A rate limit to enforce (see :meth:`limit_requests`); None: none."""
    rate_limited: int = field(default=0, repr=False)
    """The 429s the stand-in had to answer because :attr:`request_limit` was exceeded."""
    _arrivals: deque[float] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    # --- scripting ---------------------------------------------------------------------------

    def fail(
        self,
        fault: Fault | None = None,
        *,
        on_call: int | None = None,
        times: int = 1,
        route: str = "/v1/messages",
        **fields: Any,
    ) -> None:
        """Script ``fault`` (or ``Fault(**fields)``) for the next ``times`` calls of ``route``,
        or for its call number ``on_call`` (1-based, counted per route since the server
        started). ``route`` is one of the API's paths as documented: ``/v1/messages``,
        ``/v1/messages/count_tokens``, ``/v1/models``, ``/v1/models/{model_id}``."""
        fault = fault or Fault(**fields)
        _check_fault_route(fault, route)
        with self._lock:
            if on_call is not None:
                self._faults_by_call[route, on_call] = fault
            else:
                self._faults[route].extend([fault] * times)

    def reply(self, reply: Reply | None = None, *, times: int = 1, **fields: Any) -> None:
        """Answer the next ``times`` message calls answered in text with ``reply`` (or ``Reply(**fields)``)."""
        with self._lock:
            self._replies.extend([reply or Reply(**fields)] * times)

    def limit_requests(self, requests: int, window: float = 60.0, slack: float = 0.1) -> None:
        """Enforce a rate limit on ``/v1/messages`` (see :class:`RequestLimit`), counting from now."""
        with self._lock:
            self.request_limit = RequestLimit(requests, window, slack)
            self._arrivals.clear()
            self.rate_limited = 0

    def reset(self) -> None:
        """Forget recorded requests, scripted faults and replies, cached prefixes, added models, the scripted web, batches and the rate limit."""
        with self._lock:
            self.request_limit = None
            self._arrivals.clear()
            self.rate_limited = 0
            self.requests.clear()
            self._faults.clear()
            self._faults_by_call.clear()
            self._replies.clear()
            self.models[:] = MODELS
            self.web = WebScript()
        self.cache.clear()
        self.batches.clear()

    @property
    def active_streams(self) -> int:
        """Streams being written right now."""
        with self._lock:
            return self._active

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply()

    def _next_fault(self, route: str) -> Fault:
        with self._lock:
            self._calls[route] += 1
            if (route, self._calls[route]) in self._faults_by_call:
                return self._faults_by_call.pop((route, self._calls[route]))
            queue = self._faults[route]
            return queue.popleft() if queue else Fault()

    def _over_limit(self, now: float) -> float | None:
        """Seconds until a message request may come, when this one exceeds the rate limit (and
        is counted as such); None when it may go (and it is counted against the limit)."""
        with self._lock:
            limit = self.request_limit
            if limit is None:
                return None
            while self._arrivals and self._arrivals[0] <= now - (limit.window - limit.slack):
                self._arrivals.popleft()
            if len(self._arrivals) >= limit.requests:
                self.rate_limited += 1
                return self._arrivals[0] + limit.window - limit.slack - now
            self._arrivals.append(now)
            return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _tool_use_for(self, body: dict[str, Any], request_id: str) -> dict[str, Any] | None:
        """The tool call this request is answered with, if any (see :attr:`tool_calls`), as its
        ``tool_choice`` allows: none for ``none``; one for ``any``, and one of the named tool for
        ``tool`` (which takes a scripted call only if it is of that tool)."""
        tools = [t for t in body.get("tools") or [] if t.get("type", "custom") == "custom"]  # not the API's own tools
        choice = body.get("tool_choice") or {"type": "auto"}
        if choice["type"] == "none" or (not tools and self.scripted_calls_need_tools):
            return None
        named = choice.get("name") if choice["type"] == "tool" else None
        with self._lock:
            takes_scripted = bool(self.tool_calls) and named in (None, self.tool_calls[0][0])
            scripted = self.tool_calls.popleft() if takes_scripted else None
        if scripted is None:
            if not tools or (choice["type"] == "auto" and _answers_tool_results(body)):
                return None
            tool = next(t for t in tools if t.get("name") == named) if named else tools[0]
            scripted = (tool["name"], sample_arguments(tool.get("input_schema", {})))
        name, arguments = scripted
        return {"type": "tool_use", "id": f"toolu_{request_id}", "name": name, "input": arguments}

    def _request_id(self) -> str:
        return f"req_standin_{next(self._ids):06d}"


def _check_fault_route(fault: Fault, route: str) -> None:
    if route not in API_ROUTES:
        raise ValueError(f"no route {route!r}: faults can be scripted for {', '.join(sorted(API_ROUTES))}")
    if route != "/v1/messages" and (streamed := [f for f in _STREAM_FAULT_FIELDS if getattr(fault, f) is not None]):
        raise ValueError(f"{', '.join(streamed)}: only /v1/messages streams, not {route}")


def _answers_tool_results(body: dict[str, Any]) -> bool:
    last = body["messages"][-1].get("content")
    return isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)


