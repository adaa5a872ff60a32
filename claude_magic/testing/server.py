"""A local stand-in for the Anthropic API: a real HTTP/1.1 server on 127.0.0.1.

It speaks the Messages API's protocol (SSE streams, the error envelope with its status codes,
``request-id``, ``retry-after``, ``x-should-retry``), applies the validation rules users meet,
answers deterministically from the request (within its ``max_tokens``, ``stop_sequences`` and
``tool_choice``), records every request it receives, and can be scripted to fail: an error
status on a given call of any route, an ``error`` event or a dropped connection mid-stream,
slow tokens.

    with StandIn() as server:
        os.environ["ANTHROPIC_BASE_URL"] = server.base_url
        ...
        assert server.requests[-1].body["model"] == "claude-sonnet-5-5"
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..api.media import IMAGE_MEDIA_TYPES, sniff_media_type
from ..api.settings import API_VERSIONS, MAX_REQUEST_BYTES, SAMPLING_PARAMETERS, accepts_sampling_parameters
from .answers import Generated, answer_for, directives, generate, text_of_content, thinking_for
from .cache import MAX_BREAKPOINTS, PromptCache, breakpoints, input_tokens
from .models import DEFAULT_SAMPLING_ONLY, MODELS

_STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class Fault:
    """A scripted failure for one call of a route (``/v1/messages`` unless told otherwise).

    ``status``: answer with this HTTP error instead (``retry_after`` / ``retry_after_ms`` /
    ``should_retry`` set the matching headers; a ``retry_after`` datetime is sent as an HTTP
    date). ``error_after`` / ``drop_after``: send that many text deltas, then an ``error``
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

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []

    def prompts(self) -> list[str]:
        """The text of every user turn, oldest first."""
        return [text_of_content(m["content"]) for m in self.messages if m.get("role") == "user"]


class APIFailure(Exception):
    """Raised by validation: becomes the API's error envelope."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or _STATUS_ERROR_TYPES.get(status, "api_error")


@dataclass
class StandIn:
    """The stand-in server. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    api_key: str | None = field(default=None, repr=False)
    """When set, only this key is accepted; otherwise any non-empty key is."""
    host: str = "127.0.0.1"
    port: int = 0
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
    _faults: defaultdict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque), repr=False)
    _faults_by_call: dict[tuple[str, int], Fault] = field(default_factory=dict, repr=False)
    _calls: Counter[str] = field(default_factory=Counter, repr=False)
    _replies: deque[Reply] = field(default_factory=deque, repr=False)
    _active: int = field(default=0, repr=False)
    max_concurrent: int = field(default=0, repr=False)
    """The most ``/v1/messages`` requests seen in flight at once."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)
    _server: _Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> StandIn:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = _Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="claude-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

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

    def reset(self) -> None:
        """Forget recorded requests, scripted faults and replies, cached prefixes and added models."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._faults_by_call.clear()
            self._replies.clear()
            self.models[:] = MODELS
        self.cache.clear()

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

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _tool_use_for(self, body: dict[str, Any], request_id: str) -> dict[str, Any] | None:
        """The tool call this request is answered with, if any (see :attr:`tool_calls`), as its
        ``tool_choice`` allows: none for ``none``; one for ``any``, and one of the named tool for
        ``tool`` (which takes a scripted call only if it is of that tool)."""
        tools = body.get("tools") or []
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

    # --- the API's rules ---------------------------------------------------------------------

    def check_auth(self, headers: dict[str, str]) -> None:
        key = headers.get("x-api-key")
        bearer = headers.get("authorization", "")
        supplied = key or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
        if not supplied:
            raise APIFailure(401, "x-api-key header is required")
        if self.api_key is not None and supplied != self.api_key:
            raise APIFailure(401, "invalid x-api-key")
        version = headers.get("anthropic-version")
        if not version:
            raise APIFailure(400, "anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise APIFailure(400, f"anthropic-version: unknown version '{version}'")

    def validate_message_body(self, body: Any, version: str, *, counting: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise APIFailure(400, "the request body must be a JSON object")
        required = ("model", "messages") if counting else ("model", "max_tokens", "messages")
        for name in required:
            if name not in body:
                raise APIFailure(400, f"{name}: Field required")
        if not accepts_sampling_parameters(version):
            for name in SAMPLING_PARAMETERS:
                if name in body:
                    raise APIFailure(400, f"{name}: Extra inputs are not permitted")
        model = resolve_model(body["model"], self.models)
        if model is None:
            raise APIFailure(404, f"model: {body['model']}")
        if model["id"] in DEFAULT_SAMPLING_ONLY:
            _check_default_sampling(body, model["id"])
        if not counting:
            _check_max_tokens(body["max_tokens"], model)
            _check_stop_sequences(body.get("stop_sequences"))
        _check_messages(body["messages"])
        _check_cache_control(body)
        _check_thinking(body, model)
        _check_tool_choice(body)
        return model


def _check_thinking(body: dict[str, Any], model: dict[str, Any]) -> None:
    """The thinking modes the model's capabilities allow, and thinking blocks sent back whole."""
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        supported = model["capabilities"]["thinking"]["types"]
        if kind in ("adaptive", "enabled") and not supported.get(kind, {}).get("supported"):
            other = "adaptive" if kind == "enabled" else "enabled"
            raise APIFailure(400, f"thinking.type: '{kind}' is not supported for {model['id']}; use '{other}'")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024 or budget >= body.get("max_tokens", 0):
                raise APIFailure(400, "thinking.budget_tokens: must be at least 1024 and less than max_tokens")
    for i, message in enumerate(body["messages"]):
        for j, block in enumerate(message.get("content") if isinstance(message.get("content"), list) else []):
            if isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature"):
                raise APIFailure(400, f"messages.{i}.content.{j}.thinking.signature: Field required")


_TOOL_CHOICE_FIELDS = {
    "auto": {"type", "disable_parallel_tool_use"},
    "any": {"type", "disable_parallel_tool_use"},
    "tool": {"type", "name", "disable_parallel_tool_use"},
    "none": {"type"},
}


def _check_tool_choice(body: dict[str, Any]) -> None:
    """A known choice with only its own fields, given with tools, naming one of them, and
    forcing no call while thinking is on."""
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in _TOOL_CHOICE_FIELDS:
        raise APIFailure(
            400,
            f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'",
        )
    if extra := sorted(choice.keys() - _TOOL_CHOICE_FIELDS[kind]):
        raise APIFailure(400, f"tool_choice.{kind}.{extra[0]}: Extra inputs are not permitted")
    if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
        raise APIFailure(400, f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean")
    tools = body.get("tools") or []
    if not tools:
        raise APIFailure(400, f"tool_choice.{kind} may only be specified while providing tools")
    if kind == "tool":
        if "name" not in choice:
            raise APIFailure(400, "tool_choice.tool.name: Field required")
        if choice["name"] not in {tool.get("name") for tool in tools if isinstance(tool, dict)}:
            raise APIFailure(400, f"tool_choice.tool.name: no tool named '{choice['name']}' in tools")
    thinking = body.get("thinking")
    if kind in ("any", "tool") and isinstance(thinking, dict) and thinking.get("type") in ("adaptive", "enabled"):
        raise APIFailure(400, "Thinking may not be enabled when tool_choice forces tool use.")


def _check_stop_sequences(stop_sequences: Any) -> None:
    if stop_sequences is None:
        return
    if not isinstance(stop_sequences, list):
        raise APIFailure(400, "stop_sequences: Input should be a valid list")
    for i, sequence in enumerate(stop_sequences):
        if not isinstance(sequence, str):
            raise APIFailure(400, f"stop_sequences.{i}: Input should be a valid string")
        if not sequence:
            raise APIFailure(400, "stop_sequences: each stop sequence must be non-empty")
        if not sequence.strip():
            raise APIFailure(400, "stop_sequences: each stop sequence must contain non-whitespace")


def _answers_tool_results(body: dict[str, Any]) -> bool:
    last = body["messages"][-1].get("content")
    return isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)


def resolve_model(model_id: Any, catalogue: list[dict[str, Any]] = MODELS) -> dict[str, Any] | None:
    """The catalogue entry for an id or a dated snapshot of it (``claude-haiku-4-5-20251001``)."""
    for model in catalogue:
        if model_id == model["id"] or (isinstance(model_id, str) and model_id.startswith(model["id"] + "-20")):
            return model
    return None


def _check_default_sampling(body: dict[str, Any], model_id: str) -> None:
    if body.get("temperature", 1.0) != 1.0:
        raise APIFailure(400, f"temperature: {model_id} only supports the default temperature (1.0); remove it from the request")
    for name in ("top_p", "top_k"):
        if name in body:
            raise APIFailure(400, f"{name}: {model_id} does not support {name}; remove it from the request")


def _check_max_tokens(max_tokens: Any, model: dict[str, Any]) -> None:
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise APIFailure(400, "max_tokens: Input should be a valid non-negative integer")
    if max_tokens > model["max_tokens"]:
        raise APIFailure(
            400,
            f"max_tokens: {max_tokens} > {model['max_tokens']}, which is the maximum allowed number of output tokens for {model['id']}",
        )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise APIFailure(400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise APIFailure(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise APIFailure(400, f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "image":
                _check_image(block, f"messages.{i}.content.{j}")
    if messages[0].get("role") != "user":
        raise APIFailure(400, "messages: the first message must use the user role")
    _check_tool_results(messages)


def _check_tool_results(messages: list[dict[str, Any]]) -> None:
    """Every ``tool_use`` of an assistant turn is answered by a ``tool_result`` in the next message."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        calls = [b.get("id") for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        following = messages[i + 1].get("content") if i + 1 < len(messages) else None
        answered = {b.get("tool_use_id") for b in following if isinstance(b, dict) and b.get("type") == "tool_result"} if isinstance(following, list) else set()
        unanswered = [str(call) for call in calls if call not in answered]
        if unanswered:
            raise APIFailure(
                400,
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(unanswered)}. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )


def _check_cache_control(body: dict[str, Any]) -> None:
    found = breakpoints(body)
    if found > MAX_BREAKPOINTS:
        raise APIFailure(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}.")
    for i, message in enumerate(body["messages"]):
        for j, block in enumerate(message["content"] if isinstance(message["content"], list) else []):
            marker = block.get("cache_control") if isinstance(block, dict) else None
            if marker is None:
                continue
            if block.get("type") in ("thinking", "redacted_thinking"):
                raise APIFailure(400, f"messages.{i}.content.{j}.{block['type']}.cache_control: Extra inputs are not permitted")
            if not isinstance(marker, dict) or marker.get("type") != "ephemeral" or marker.get("ttl", "5m") not in ("5m", "1h"):
                raise APIFailure(400, f"messages.{i}.content.{j}.cache_control: Input should be {{'type': 'ephemeral'}} with ttl '5m' or '1h'")


def _check_image(block: dict[str, Any], where: str) -> None:
    source = block.get("source") or {}
    if source.get("type") != "base64":
        return
    media_type = source.get("media_type")
    if media_type not in IMAGE_MEDIA_TYPES:
        raise APIFailure(
            400,
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        )
    try:
        head = base64.b64decode(str(source.get("data", ""))[:64] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise APIFailure(400, f"{where}.image.source.base64.data: invalid base64 data") from None
    if sniff_media_type(head) != media_type:
        raise APIFailure(400, f"{where}.image.source.base64: The image was specified using the {media_type} media type, but the image data does not match it")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        """Each connection without Nagle's algorithm: an answer's last small write would
        otherwise wait for the client's delayed ACK (40 ms on Linux), in every latency measured."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is part of the job (Stop, Ctrl-C, tests): not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the stand-in; one instance per connection, on its own thread."""

    stand_in: StandIn
    recorded: RecordedRequest
    request_id: str
    fault: Fault
    """The scripted fault for this call (an empty one when none is)."""
    protocol_version = "HTTP/1.1"
    server_version = "claude-magic-stand-in"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # --- plumbing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.request_id = self.stand_in._request_id()
        length = int(headers.get("content-length") or 0)
        self.recorded = RecordedRequest(method, url.path, parse_qs(url.query), headers, None, size=length)
        self.stand_in._record(self.recorded)
        try:
            body = self.recorded.body = self._read_body(length)
            route = _route_of(method, url.path.rstrip("/"))
            if route is None:
                raise APIFailure(404, f"{method} {url.path} is not a route of this API")
            self.stand_in.check_auth(headers)
            self.fault = self.stand_in._next_fault(route)
            if self.fault.stall:
                time.sleep(self.fault.stall)
            if self.fault.status is not None:
                self._send_fault_status(self.fault)
                return
            _ROUTES[method, route](self, body, parse_qs(url.query), headers)
        except APIFailure as failure:
            self._send_error(failure.status, failure.error_type, failure.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_body(self, length: int) -> Any:
        if length > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise APIFailure(413, "Request exceeds the maximum allowed number of bytes.")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise APIFailure(400, f"the request body is not valid JSON: {exc.msg}") from None

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self.request_id)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, error_type: str, message: str, extra_headers: dict[str, str] | None = None) -> None:
        """The error envelope, with the API's own verdict on retrying (``extra_headers`` may override it)."""
        envelope = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": self.request_id}
        self._send_json(status, envelope, {"x-should-retry": _should_retry(status), **(extra_headers or {})})

    # --- routes ------------------------------------------------------------------------------

    def models(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        limit = max(1, min(int((query.get("limit") or ["20"])[0]), 1000))
        catalogue = self.stand_in.models
        ids = [m["id"] for m in catalogue]
        start, end = 0, len(ids)
        if after := _first(query, "after_id"):
            start = ids.index(after) + 1 if after in ids else len(ids)
        if before := _first(query, "before_id"):
            end = ids.index(before) if before in ids else 0
            start = max(start, end - limit)
        page = catalogue[start : min(end, start + limit)]
        has_more = (start + limit < end) if not before else start > 0
        self._send_json(
            200,
            {
                "data": page,
                "has_more": has_more,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
        )

    def model(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        model_id = unquote(self.recorded.path.rstrip("/").rsplit("/", 1)[-1])
        model = resolve_model(model_id, self.stand_in.models)
        if model is None:
            raise APIFailure(404, f"model: {model_id}")
        self._send_json(200, model)

    def count_tokens(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        self.stand_in.validate_message_body(body, headers["anthropic-version"], counting=True)
        self._send_json(200, {"input_tokens": input_tokens(body)})

    def messages(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        model = self.stand_in.validate_message_body(body, headers["anthropic-version"])
        reply, model_id = self._reply(body, model["id"])
        self.recorded.answer = "".join(reply.text)
        usage = {**self.stand_in.cache.usage(model["id"], body), "output_tokens": reply.output_tokens}
        message_id = f"msg_standin_{self.request_id[-6:]}"
        if not body.get("stream"):
            message = _message(message_id, model_id, _content(reply), reply.stop_reason, usage, reply.stop_sequence)
            self._send_json(200, message)
            return
        with self.stand_in._lock:
            self.stand_in._active += 1
            self.stand_in.max_concurrent = max(self.stand_in.max_concurrent, self.stand_in._active)
        try:
            self._stream(message_id, model_id, reply, usage, _delay(self.fault, body, self.stand_in.delay))
        finally:
            with self.stand_in._lock:
                self.stand_in._active -= 1

    def _reply(self, body: dict[str, Any], model_id: str) -> tuple[Generated, str]:
        """The answer to a valid request, generated within its limits (or as scripted with
        :meth:`StandIn.reply`), and the model id it reports. A forced tool call comes alone:
        the API prefills it, so no text precedes it."""
        tool_use = self.stand_in._tool_use_for(body, self.request_id)
        scripted = Reply() if tool_use else self.stand_in._next_reply()
        forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
        if tool_use:
            text = "" if forced else f"I'll use the tool `{tool_use['name']}`."
        else:
            text = scripted.text if scripted.text is not None else answer_for(body)
        thinking = None
        if (body.get("thinking") or {}).get("type") in ("adaptive", "enabled"):
            thinking = scripted.thinking if scripted.thinking is not None else thinking_for(body)
        stop_sequences = body.get("stop_sequences") or ()
        reply = generate(thinking, text, tool_use, max_tokens=body["max_tokens"], stop_sequences=stop_sequences)
        if scripted.stop_reason is not None:
            reply = replace(reply, stop_reason=scripted.stop_reason)
        return reply, scripted.model or model_id

    def _send_fault_status(self, fault: Fault) -> None:
        status = fault.status or 500
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = _retry_after(fault.retry_after)
        if fault.retry_after_ms is not None:
            extra["retry-after-ms"] = f"{fault.retry_after_ms:g}"
        if fault.should_retry is not None:
            extra["x-should-retry"] = "true" if fault.should_retry else "false"
        error_type = fault.error_type or _STATUS_ERROR_TYPES.get(status, "api_error")
        self._send_error(status, error_type, fault.message or _reason(status), extra)

    def _stream(self, message_id: str, model: str, reply: Generated, usage: dict[str, Any], delay: float) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self.request_id)
        self.end_headers()
        self._pending: list[bytes] = []
        start_usage = {**usage, "output_tokens": min(1, reply.output_tokens)}
        self._event("message_start", {"type": "message_start", "message": _message(message_id, model, [], None, start_usage)})
        index = 0
        if reply.thinking:
            self._thinking(reply.thinking)
            index = 1
        if reply.text:
            if not self._text(index, reply.text, delay):
                return
            index += 1
        if reply.tool_use:
            self._tool_use(index, reply.tool_use)
        delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
        self._event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _text(self, index: int, deltas: tuple[str, ...], delay: float) -> bool:
        """A text block, delta by delta; False when a scripted fault ended the stream in it."""
        fault = self.fault
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        self._event("ping", {"type": "ping"})
        for sent, piece in enumerate(deltas):
            if sent == fault.error_after:
                error_type = fault.error_type or "overloaded_error"
                self._event("error", {"type": "error", "error": {"type": error_type, "message": fault.message or "Overloaded"}})
                self._end_chunks()
                return False
            if sent == fault.drop_after:
                self._drop_connection()
                return False
            if delay:
                self._send_pending()
                time.sleep(delay)
            delta = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
            self._event("content_block_delta", delta)
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})
        return True

    def _tool_use(self, index: int, tool_use: dict[str, Any]) -> None:
        """A tool_use block whose input arrives as partial JSON, split mid-string as the API does."""
        start = {"type": "content_block_start", "index": index, "content_block": {**tool_use, "input": {}}}
        self._event("content_block_start", start)
        arguments = json.dumps(tool_use["input"])
        for piece in ("", arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _thinking(self, deltas: tuple[str, ...]) -> None:
        """A thinking block at index 0: its deltas, a final empty one, then its signature."""
        self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in [*deltas, ""]:
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
        signature = _thinking_block("".join(deltas))["signature"]
        self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": signature}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})

    def _event(self, name: str, data: dict[str, Any]) -> None:
        """Queue one event; events ready together go out in one HTTP chunk, as from a busy
        server, and an event is sent at once whenever the stream is about to wait."""
        self._pending.append(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
        if len(self._pending) >= self.stand_in.events_per_chunk:
            self._send_pending()

    def _send_pending(self) -> None:
        if self._pending:
            payload = b"".join(self._pending)
            self._pending.clear()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

    def _end_chunks(self) -> None:
        self._send_pending()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop_connection(self) -> None:
        """Send what is queued, then cut the connection mid-body, as a network failure would."""
        self._send_pending()
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


_ROUTES = {
    ("GET", "/v1/models"): _Handler.models,
    ("GET", "/v1/models/{model_id}"): _Handler.model,
    ("POST", "/v1/messages"): _Handler.messages,
    ("POST", "/v1/messages/count_tokens"): _Handler.count_tokens,
}
"""Each route by the path the API documents; ``{name}`` stands for one path segment."""
_STREAM_FAULT_FIELDS = ("error_after", "drop_after", "delay")


def _route_of(method: str, path: str) -> str | None:
    """The documented path of the route ``path`` is a call of, if any."""
    for route_method, route in _ROUTES:
        if route_method == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", route), path):
            return route
    return None


def _check_fault_route(fault: Fault, route: str) -> None:
    if route not in {path for _, path in _ROUTES}:
        raise ValueError(f"no route {route!r}: faults can be scripted for {', '.join(sorted({p for _, p in _ROUTES}))}")
    if route != "/v1/messages" and (streamed := [f for f in _STREAM_FAULT_FIELDS if getattr(fault, f) is not None]):
        raise ValueError(f"{', '.join(streamed)}: only /v1/messages streams, not {route}")


def _should_retry(status: int) -> str:
    """The API's ``x-should-retry`` for an error status: retry 408, 409, 429 and 5xx."""
    return "true" if status in (408, 409, 429) or status >= 500 else "false"


def _retry_after(value: float | datetime) -> str:
    """``retry-after`` in seconds, or for a datetime as an HTTP date (whole seconds, GMT)."""
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(timezone.utc), usegmt=True)
    return f"{value:g}"


def _content(reply: Generated) -> list[dict[str, Any]]:
    """A non-streamed answer's content blocks."""
    thinking = [_thinking_block("".join(reply.thinking))] if reply.thinking else []
    text = [{"type": "text", "text": "".join(reply.text)}] if reply.text else []
    return [*thinking, *text, *([reply.tool_use] if reply.tool_use else [])]


def _message(
    message_id: str,
    model: str,
    content: list[Any],
    stop_reason: str | None,
    usage: dict[str, Any],
    stop_sequence: str | None = None,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, **usage},
    }


def _delay(fault: Fault, body: dict[str, Any], default: float) -> float:
    if fault.delay is not None:
        return fault.delay
    prompt = text_of_content(body["messages"][-1].get("content", ""))
    asked = directives(prompt).delay
    return asked if asked is not None else default


def _thinking_block(thinking: str) -> dict[str, str]:
    signature = "sig_standin_" + hashlib.sha256(thinking.encode()).hexdigest()[:32]
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a tool's required parameters: the default, else a simple value of the type."""
    samples = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
    properties = schema.get("properties", {})
    return {name: properties.get(name, {}).get("default", samples.get(properties.get(name, {}).get("type"), "text")) for name in schema.get("required", [])}


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"

