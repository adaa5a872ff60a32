"""A local stand-in for the Anthropic API: a real HTTP/1.1 server on 127.0.0.1.

It speaks the Messages API's protocol (SSE streams, the error envelope with its status codes,
``request-id``, ``retry-after``), applies the validation rules users meet, answers
deterministically from the request, records every request it receives, and can be scripted
to fail: an error status on a given call, an ``error`` event or a dropped connection
mid-stream, slow tokens.

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
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..config import SAMPLING_PARAMETERS, accepts_sampling_parameters
from .answers import answer_for, directives, split_into_deltas, text_of_content, thinking_for
from .cache import MAX_BREAKPOINTS, PromptCache, breakpoints, input_tokens
from .models import DEFAULT_SAMPLING_ONLY, MODELS

KNOWN_VERSIONS = ("2023-06-01", "2026-10-21")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_REQUEST_BYTES = 32 * 1024 * 1024
_IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
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
    """A scripted failure for one ``/v1/messages`` call.

    ``status``: answer with this HTTP error instead (``retry_after`` / ``retry_after_ms`` /
    ``should_retry`` set the matching headers). ``error_after`` / ``drop_after``: send that
    many text deltas, then an ``error`` event (of ``error_type``) or drop the connection.
    ``delay``: seconds between deltas (slow tokens). ``stall``: seconds to wait before
    answering at all (to provoke a client timeout).
    """

    status: int | None = None
    error_type: str | None = None
    message: str | None = None
    retry_after: float | None = None
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
    any field left ``None`` is generated as usual.

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
    requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    models: list[dict[str, Any]] = field(default_factory=lambda: list(MODELS), repr=False)
    """The catalogue ``/v1/models`` lists and requests may name, newest first (a test may add one)."""
    cache: PromptCache = field(default_factory=PromptCache, repr=False)
    """Prefixes marked with ``cache_control`` that requests have carried (see :mod:`.cache`)."""
    _faults: deque[Fault] = field(default_factory=deque, repr=False)
    _faults_by_call: dict[int, Fault] = field(default_factory=dict, repr=False)
    _replies: deque[Reply] = field(default_factory=deque, repr=False)
    _message_calls: int = field(default=0, repr=False)
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

    def fail(self, fault: Fault | None = None, *, on_call: int | None = None, times: int = 1, **fields: Any) -> None:
        """Script ``fault`` (or ``Fault(**fields)``) for the next ``times`` message calls, or
        for call number ``on_call`` (1-based, counted since the server started)."""
        fault = fault or Fault(**fields)
        with self._lock:
            if on_call is not None:
                self._faults_by_call[on_call] = fault
            else:
                self._faults.extend([fault] * times)

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

    def _next_fault(self) -> Fault:
        with self._lock:
            self._message_calls += 1
            if self._message_calls in self._faults_by_call:
                return self._faults_by_call.pop(self._message_calls)
            return self._faults.popleft() if self._faults else Fault()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else Reply()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _tool_use_for(self, body: dict[str, Any], request_id: str) -> dict[str, Any] | None:
        """The tool call this request is answered with, if any (see :attr:`tool_calls`)."""
        tools = body.get("tools") or []
        if not tools:
            return None
        with self._lock:
            scripted = self.tool_calls.popleft() if self.tool_calls else None
        if scripted is None:
            last = body["messages"][-1].get("content")
            if isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last):
                return None
            scripted = (tools[0]["name"], sample_arguments(tools[0].get("input_schema", {})))
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
        if version not in KNOWN_VERSIONS:
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
        _check_messages(body["messages"])
        _check_cache_control(body)
        _check_thinking(body, model)
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
        head = base64.b64decode(str(source.get("data", ""))[:64] + "==", validate=False)[:8]
    except (binascii.Error, ValueError):
        raise APIFailure(400, f"{where}.image.source.base64.data: invalid base64 data") from None
    if not head.startswith(_IMAGE_SIGNATURES[media_type]):
        raise APIFailure(400, f"{where}.image.source.base64: The image was specified using the {media_type} media type, but the image data does not match it")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up is part of the job (Stop, Ctrl-C, tests): not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the stand-in; one instance per connection, on its own thread."""

    stand_in: StandIn
    recorded: RecordedRequest
    request_id: str
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
        try:
            body = self._read_body(headers)
            self.recorded = RecordedRequest(method, url.path, parse_qs(url.query), headers, body)
            self.stand_in._record(self.recorded)
            route = _ROUTES.get((method, url.path.rstrip("/")))
            if route is None:
                raise APIFailure(404, f"{method} {url.path} is not a route of this API")
            self.stand_in.check_auth(headers)
            route(self, body, parse_qs(url.query), headers)
        except APIFailure as failure:
            self._send_error(failure.status, failure.error_type, failure.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_body(self, headers: dict[str, str]) -> Any:
        length = int(headers.get("content-length") or 0)
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
        envelope = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": self.request_id}
        self._send_json(status, envelope, extra_headers)

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

    def count_tokens(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        self.stand_in.validate_message_body(body, headers["anthropic-version"], counting=True)
        self._send_json(200, {"input_tokens": input_tokens(body)})

    def messages(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        fault = self.stand_in._next_fault()
        if fault.stall:
            time.sleep(fault.stall)
        if fault.status is not None:
            self._send_fault_status(fault)
            return
        model = self.stand_in.validate_message_body(body, headers["anthropic-version"])
        tool_use = self.stand_in._tool_use_for(body, self.request_id)
        reply = Reply() if tool_use else self.stand_in._next_reply()
        text = self.recorded.answer = f"I'll use the tool `{tool_use['name']}`." if tool_use else _or(reply.text, answer_for, body)
        thinking = _or(reply.thinking, thinking_for, body) if (body.get("thinking") or {}).get("type") in ("adaptive", "enabled") else None
        model_id, stop_reason = reply.model or model["id"], reply.stop_reason or ("tool_use" if tool_use else "end_turn")
        output = len(split_into_deltas(text)) + (len(split_into_deltas(thinking)) if thinking else 0)
        usage = {**self.stand_in.cache.usage(model["id"], body), "output_tokens": output}
        message_id = f"msg_standin_{self.request_id[-6:]}"
        if not body.get("stream"):
            content = ([_thinking_block(thinking)] if thinking else []) + [{"type": "text", "text": text}] + ([tool_use] if tool_use else [])
            self._send_json(200, _message(message_id, model_id, content, stop_reason, usage))
            return
        with self.stand_in._lock:
            self.stand_in._active += 1
            self.stand_in.max_concurrent = max(self.stand_in.max_concurrent, self.stand_in._active)
        try:
            self._stream(message_id, model_id, text, usage, fault, _delay(fault, body, self.stand_in.delay), thinking, tool_use, stop_reason)
        finally:
            with self.stand_in._lock:
                self.stand_in._active -= 1

    def _send_fault_status(self, fault: Fault) -> None:
        status = fault.status or 500
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = f"{fault.retry_after:g}"
        if fault.retry_after_ms is not None:
            extra["retry-after-ms"] = f"{fault.retry_after_ms:g}"
        if fault.should_retry is not None:
            extra["x-should-retry"] = "true" if fault.should_retry else "false"
        error_type = fault.error_type or _STATUS_ERROR_TYPES.get(status, "api_error")
        self._send_error(status, error_type, fault.message or _reason(status), extra)

    def _stream(self, message_id: str, model: str, text: str, usage: dict[str, Any], fault: Fault, delay: float, thinking: str | None = None, tool_use: dict[str, Any] | None = None, stop_reason: str = "end_turn") -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self.request_id)
        self.end_headers()
        self._pending: list[bytes] = []
        start_usage = {**usage, "output_tokens": 1}
        self._event("message_start", {"type": "message_start", "message": _message(message_id, model, [], None, start_usage)})
        index = 0
        if thinking:
            self._thinking(thinking)
            index = 1
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        self._event("ping", {"type": "ping"})
        for sent, piece in enumerate(split_into_deltas(text)):
            if sent == fault.error_after:
                error_type = fault.error_type or "overloaded_error"
                self._event("error", {"type": "error", "error": {"type": error_type, "message": fault.message or "Overloaded"}})
                self._end_chunks()
                return
            if sent == fault.drop_after:
                self._drop_connection()
                return
            if delay:
                self._send_pending()
                time.sleep(delay)
            delta = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
            self._event("content_block_delta", delta)
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})
        if tool_use:
            self._tool_use(index + 1, tool_use)
        self._event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage},
        )
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _tool_use(self, index: int, tool_use: dict[str, Any]) -> None:
        """A tool_use block whose input arrives as partial JSON, split mid-string as the API does."""
        start = {"type": "content_block_start", "index": index, "content_block": {**tool_use, "input": {}}}
        self._event("content_block_start", start)
        arguments = json.dumps(tool_use["input"])
        for piece in ("", arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _thinking(self, thinking: str) -> None:
        """A thinking block at index 0: its deltas, a final empty one, then its signature."""
        self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
        for piece in [*split_into_deltas(thinking), ""]:
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": piece}})
        signature = _thinking_block(thinking)["signature"]
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
    ("POST", "/v1/messages"): _Handler.messages,
    ("POST", "/v1/messages/count_tokens"): _Handler.count_tokens,
}


def _message(message_id: str, model: str, content: list[Any], stop_reason: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, **usage},
    }


def _or(scripted: str | None, generate: Callable[[dict[str, Any]], str], body: dict[str, Any]) -> str:
    """The scripted text if there is one, else the one generated from the request."""
    return scripted if scripted is not None else generate(body)


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

