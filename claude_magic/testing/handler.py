"""The stand-in's HTTP side: a threaded HTTP/1.1 server on loopback, the routes, the error
envelope and the SSE writer (events ready together go out in one chunk, as from a busy server).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..api.settings import MAX_REQUEST_BYTES
from .answers import Generated, Part, answer_for, directives, generate, question_of, text_of_content, thinking_for
from .batches import MAX_BATCH_BYTES, page
from .cache import input_tokens
from .rules import STATUS_ERROR_TYPES, APIFailure, check_auth, resolve_model, validate_message_body
from .script import Fault, RecordedRequest, Reply, Script
from .server_tools import server_answer
from .sources import cited_answer
from .structured import answer_json, check_output_format


class Server(ThreadingHTTPServer):
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


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the stand-in; one instance per connection, on its own thread."""

    stand_in: Script
    recorded: RecordedRequest
    request_id: str
    fault: Fault
    """The scripted fault for this call (an empty one when none is)."""
    _pending: list[bytes]
    """Events (or result lines) waiting to go out in the next chunk."""
    protocol_version = "HTTP/1.1"
    server_version = "claude-magic-stand-in"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    # --- plumbing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.request_id = self.stand_in._request_id()
        length = int(headers.get("content-length") or 0)
        self.recorded = RecordedRequest(method, url.path, parse_qs(url.query), headers, None, size=length)
        self.stand_in._record(self.recorded)
        try:
            route = _route_of(method, url.path.rstrip("/"))
            body = self.recorded.body = self._read_body(length, MAX_BATCH_BYTES if route == BATCHES else MAX_REQUEST_BYTES)
            if route is None:
                raise APIFailure(404, f"{method} {url.path} is not a route of this API")
            check_auth(headers, self.stand_in.api_key)
            if route == "/v1/messages" and (wait := self.stand_in._over_limit(self.recorded.received)) is not None:
                retry_after = {"retry-after": f"{max(wait, 0.0):.3f}"}
                self._send_error(429, "rate_limit_error", "Number of requests has exceeded your rate limit", retry_after)
                return
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
        finally:
            self.recorded.ended = time.monotonic()

    def _read_body(self, length: int, most: int) -> Any:
        if length > most:
            self.close_connection = True
            raise APIFailure(413, "Request exceeds the maximum allowed number of bytes.")
        raw = self.rfile.read(length) if length else b""
        self.recorded.digest = hashlib.sha256(raw).hexdigest()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise APIFailure(400, f"the request body is not valid JSON: {exc.msg}") from None

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.recorded.status = status
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", self.request_id)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(
        self, status: int, error_type: str, message: str, extra_headers: dict[str, str] | None = None, error_code: str | None = None
    ) -> None:
        """The error envelope, with the API's own verdict on retrying (``extra_headers`` may override it)."""
        error: dict[str, Any] = {"type": error_type, "message": message, **({"details": {"error_code": error_code}} if error_code else {})}
        envelope = {"type": "error", "error": error, "request_id": self.request_id}
        self._send_json(status, envelope, {"x-should-retry": _should_retry(status), **(extra_headers or {})})

    # --- routes ------------------------------------------------------------------------------

    def models(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        self._send_json(200, page(self.stand_in.models, query))

    def model(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        model_id = unquote(self.recorded.path.rstrip("/").rsplit("/", 1)[-1])
        model = resolve_model(model_id, self.stand_in.models)
        if model is None:
            raise APIFailure(404, f"model: {model_id}")
        self._send_json(200, model)

    def count_tokens(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        model = validate_message_body(body, headers["anthropic-version"], self.stand_in.models, counting=True, betas=headers.get("anthropic-beta", ""))
        check_output_format(body, model)
        self._send_json(200, {"input_tokens": input_tokens(body)})

    def messages(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        model = validate_message_body(body, headers["anthropic-version"], self.stand_in.models, betas=headers.get("anthropic-beta", ""))
        check_output_format(body, model)
        reply, model_id, server_usage = self._reply(body, model["id"])
        self.recorded.answer = "".join(reply.text)
        usage = {**self.stand_in.cache.usage(model["id"], body), "output_tokens": reply.output_tokens, **server_usage}
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

    def _reply(self, body: dict[str, Any], model_id: str) -> tuple[Generated, str, dict[str, Any]]:
        return reply_to(self.stand_in, body, model_id, self.request_id)

    # --- message batches (see :mod:`.batches`) ---------------------------------------------------

    def create_batch(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        self._send_json(200, self.stand_in.batches.create(body))

    def list_batches(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        batches = self.stand_in.batches
        shown = [batches.describe(batch, self._batch_answer(headers), self._base_url()) for batch in reversed(list(batches.batches.values()))]
        self._send_json(200, page(shown, query))

    def retrieve_batch(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        batches = self.stand_in.batches
        self._send_json(200, batches.describe(batches.get(self._batch_id()), self._batch_answer(headers), self._base_url()))

    def cancel_batch(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        batches = self.stand_in.batches
        batch = batches.cancel(self._batch_id(), self._batch_answer(headers))
        self._send_json(200, batches.describe(batch, self._batch_answer(headers), self._base_url()))

    def delete_batch(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        batch_id = self._batch_id()
        self.stand_in.batches.delete(batch_id, self._batch_answer(headers))
        self._send_json(200, {"id": batch_id, "type": "message_batch_deleted"})

    def batch_results(self, body: Any, query: dict[str, list[str]], headers: dict[str, str]) -> None:
        lines = self.stand_in.batches.results(self._batch_id(), self._batch_answer(headers))
        self.recorded.status = 200
        self.send_response(200)
        self.send_header("content-type", "application/binary")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self.request_id)
        self.end_headers()
        self._pending = []
        for line in lines:
            self._pending.append(line)
            if len(self._pending) >= 256:
                self._send_pending()
        self._end_chunks()

    def _batch_id(self) -> str:
        """The batch a route names: the segment after ``/v1/messages/batches/``."""
        return unquote(self.recorded.path.rstrip("/").split("/")[4])

    def _base_url(self) -> str:
        return f"http://{self.headers.get('host', '127.0.0.1')}"

    def _batch_answer(self, headers: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """How each request of a batch is answered when it is processed (under this call's API version)."""
        stand_in, version = self.stand_in, headers["anthropic-version"]
        return lambda params: batch_result(stand_in, params, version)

    def _send_fault_status(self, fault: Fault) -> None:
        status = fault.status or 500
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = _retry_after(fault.retry_after)
        if fault.retry_after_ms is not None:
            extra["retry-after-ms"] = f"{fault.retry_after_ms:g}"
        if fault.should_retry is not None:
            extra["x-should-retry"] = "true" if fault.should_retry else "false"
        error_type = fault.error_type or STATUS_ERROR_TYPES.get(status, "api_error")
        self._send_error(status, error_type, fault.message or _reason(status), extra, fault.error_code)

    def _stream(self, message_id: str, model: str, reply: Generated, usage: dict[str, Any], delay: float) -> None:
        self.recorded.status = 200
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", self.request_id)
        self.end_headers()
        self._pending = []
        start_usage = {**usage, "output_tokens": min(1, reply.output_tokens)}
        self._event("message_start", {"type": "message_start", "message": _message(message_id, model, [], None, start_usage)})
        first = 0
        if reply.thinking:
            self._thinking(reply.thinking)
            first = 1
        self._text_sent = 0
        for index, part in enumerate(reply.parts, first):
            if part.block is None:
                if not self._text(index, part, delay):
                    return
            elif part.is_call:
                self._call(index, part.block)
            else:
                self._whole_block(index, part.block)
        delta = {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence}
        self._event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _text(self, index: int, part: Part, delay: float) -> bool:
        """A text block: its citations first, then its text delta by delta (as the API streams a
        cited sentence); False when a scripted fault ended the stream in it (the fault counts
        text deltas across the answer's blocks)."""
        fault = self.fault
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        if not self._text_sent:
            self._event("ping", {"type": "ping"})
        for citation in part.citations:
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "citations_delta", "citation": citation}})
        for piece in part.deltas:
            sent, self._text_sent = self._text_sent, self._text_sent + 1
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

    def _call(self, index: int, call: dict[str, Any]) -> None:
        """A call (``tool_use``, ``server_tool_use``, ``mcp_tool_use``) whose input arrives as
        partial JSON, split mid-string as the API does."""
        start = {"type": "content_block_start", "index": index, "content_block": {**call, "input": {}}}
        self._event("content_block_start", start)
        arguments = json.dumps(call["input"])
        for piece in ("", arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _whole_block(self, index: int, block: dict[str, Any]) -> None:
        """A block that arrives complete in its start (a server tool's result), then stops."""
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
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


BATCHES = "/v1/messages/batches"

_ROUTES = {
    ("POST", BATCHES): Handler.create_batch,
    ("GET", BATCHES): Handler.list_batches,
    ("GET", f"{BATCHES}/{{message_batch_id}}"): Handler.retrieve_batch,
    ("DELETE", f"{BATCHES}/{{message_batch_id}}"): Handler.delete_batch,
    ("POST", f"{BATCHES}/{{message_batch_id}}/cancel"): Handler.cancel_batch,
    ("GET", f"{BATCHES}/{{message_batch_id}}/results"): Handler.batch_results,
    ("GET", "/v1/models"): Handler.models,
    ("GET", "/v1/models/{model_id}"): Handler.model,
    ("POST", "/v1/messages"): Handler.messages,
    ("POST", "/v1/messages/count_tokens"): Handler.count_tokens,
}
"""Each route by the path the API documents; ``{name}`` stands for one path segment."""


def _route_of(method: str, path: str) -> str | None:
    """The documented path of the route ``path`` is a call of, if any."""
    for route_method, route in _ROUTES:
        if route_method == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", route), path):
            return route
    return None


def reply_to(stand_in: Script, body: dict[str, Any], model_id: str, request_id: str) -> tuple[Generated, str, dict[str, Any]]:
    """The answer to a valid request, generated within its limits (or as scripted with
    :meth:`Script.reply`), the model id it reports, and the usage of the server tools it ran. A
    forced tool call comes alone: the API prefills it, so no text precedes it. With structured
    outputs, the text follows the schema."""
    tool_use = stand_in._tool_use_for(body, request_id)
    scripted = Reply() if tool_use else stand_in._next_reply()
    forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
    server = None if tool_use or scripted.text is not None else server_answer(body, stand_in.web, request_id)
    if tool_use:
        parts = [Part(block=tool_use)] if forced else [Part(f"I'll use the tool `{tool_use['name']}`."), Part(block=tool_use)]
    elif scripted.text is not None:
        parts = [Part(scripted.text)]
    elif server is not None:
        parts = server.parts
    else:
        parts = cited_answer(body) or [Part(_unscripted_text(body))]
    thinking = None
    if (body.get("thinking") or {}).get("type") in ("adaptive", "enabled"):
        thinking = scripted.thinking if scripted.thinking is not None else thinking_for(body)
    stop_sequences = body.get("stop_sequences") or ()
    reply = generate(thinking, parts, max_tokens=body["max_tokens"], stop_sequences=stop_sequences)
    paused = server.stop_reason if server is not None and reply.stop_reason != "max_tokens" else None
    if (stop_reason := scripted.stop_reason or paused) is not None:
        reply = replace(reply, stop_reason=stop_reason)
    return reply, scripted.model or model_id, server.usage if server is not None else {}


def _unscripted_text(body: dict[str, Any]) -> str:
    form = (body.get("output_config") or {}).get("format")
    if form:
        return answer_json(form["schema"], question_of(body["messages"][-1].get("content", "")))
    return answer_for(body)


def batch_result(stand_in: Script, params: dict[str, Any], version: str) -> dict[str, Any]:
    """A batch request's ``result``: the message a non-streamed call with ``params`` gets (its usage
    in the batch tier), or ``errored`` with the error that call would get (scripted faults too)."""
    request_id = stand_in._request_id()
    try:
        model = validate_message_body(params, version, stand_in.models)
        check_output_format(params, model)
        fault = stand_in._next_fault("/v1/messages")
        if fault.status is not None:
            raise APIFailure(fault.status, fault.message or _reason(fault.status), fault.error_type)
    except APIFailure as failure:
        error = {"type": failure.error_type, "message": failure.message}
        return {"type": "errored", "error": {"type": "error", "error": error, "request_id": request_id}}
    reply, model_id, server_usage = reply_to(stand_in, params, model["id"], request_id)
    usage = {**stand_in.cache.usage(model["id"], params), "output_tokens": reply.output_tokens, **server_usage, "service_tier": "batch"}
    message = _message(f"msg_standin_{request_id[-6:]}", model_id, _content(reply), reply.stop_reason, usage, reply.stop_sequence)
    return {"type": "succeeded", "message": message}


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
    return [*thinking, *map(_block_of, reply.parts)]


def _block_of(part: Part) -> dict[str, Any]:
    if part.block is not None:
        return part.block
    return {"type": "text", "text": "".join(part.deltas), **({"citations": list(part.citations)} if part.citations else {})}


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


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
