"""HTTP client for the Messages API on httpx, sync (:class:`Client`) and async (:class:`AsyncClient`).

It knows nothing of IPython. Both flavours share one base for everything but I/O: headers,
request bodies, the retry decision and the mapping of failures to :mod:`claude_magic.errors`,
which happens here, at this single boundary.

A request body is sent in pieces (:class:`RequestBody`): a long conversation with images
makes bodies of up to 32 MB, nearly all of it the images' base64 text, which the conversation
already holds. That text is written from where it is, one image at a time, instead of being
copied into one JSON document (three copies on the way: the escaped pieces, the text, its
bytes), and nothing of the body outlives the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from .._version import __version__
from .accumulate import MessageAccumulator
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClaudeError,
    ConfigurationError,
    StreamInterrupted,
    UnexpectedResponseError,
    api_error,
    redact,
)
from .protocol import (
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ErrorEvent,
    Message,
    MessageRequest,
    ModelInfo,
    ModelPage,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingDelta,
    TokenCount,
    parse_event,
)
from .redaction import remember, remembered
from .retries import retry_delay, server_retry_after, should_retry
from .settings import MCP_BETA, SAMPLING_PARAMETERS, ClientSettings, Credentials, accepts_sampling_parameters
from .sse import ServerSentEvent, SSEDecoder

_Model = TypeVar("_Model", bound=BaseModel)
_GENERATION_ONLY_FIELDS = ("max_tokens", "stream", "stop_sequences", "metadata", *SAMPLING_PARAMETERS)

if TYPE_CHECKING:
    from typing_extensions import Self


def text_of(event: StreamEvent) -> str | None:
    """The answer text an event adds, if any."""
    if isinstance(event, ContentBlockDeltaEvent):
        return event.delta.text if isinstance(event.delta, TextDelta) else None
    if isinstance(event, ContentBlockStartEvent) and isinstance(event.content_block, TextBlock):
        return event.content_block.text or None
    return None


def thinking_of(event: StreamEvent) -> str | None:
    """The thinking text an event adds, if any."""
    if isinstance(event, ContentBlockDeltaEvent) and isinstance(event.delta, ThinkingDelta):
        return event.delta.thinking or None
    return None


class CredentialsAuth(httpx.Auth):
    """The default authentication: the settings' API key (``x-api-key``) or bearer token.

    With neither, no request leaves: one line says how to set a key. Another ``httpx.Auth``
    can take its place (see :class:`_ClientBase`), e.g. one that adds nothing when a proxy in
    front of the API holds the key.
    """

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self.credentials.present:
            raise ConfigurationError(
                "No API key: set ANTHROPIC_API_KEY in the kernel's environment "
                "(e.g. %env ANTHROPIC_API_KEY=sk-ant-...) or %config ClaudeMagics.api_key"
            )
        request.headers.update(self.credentials.headers())
        yield request


LONG_STRING = 64 * 1024
"""Strings at least this long (base64 images, in practice) are written from where they are."""


class RequestBody:
    """A JSON body for httpx's ``content=``, serialised as ``json.dumps`` would but in pieces.

    The structure is serialised at once with each long plain string (printable ASCII without
    quotes or backslashes: base64 is) replaced by a marker; each string is encoded only when
    its turn to be sent comes. :meth:`release` lets go of the pieces and strings once the
    request is over, whatever still refers to the body: httpx's response and its stream refer
    to each other (and the response to its request) until a full garbage collection.
    """

    def __init__(self, value: Any) -> None:
        marker = f"claude-magic-{secrets.token_hex(16)}"
        self._strings: list[str] = []
        text = _dumps(self._set_aside(value, marker))
        pieces = text.split(marker)
        if len(pieces) != len(self._strings) + 1:  # the body holds the marker itself (never, in practice)
            pieces, self._strings = [_dumps(value)], []
        self._pieces = [piece.encode() for piece in pieces]
        self.length = sum(map(len, self._pieces)) + sum(map(len, self._strings))
        """Bytes in all, for ``Content-Length``."""
        self.sha256: str | None = None
        """The SHA-256 of the bytes, once they have all been written (what an answer's provenance names)."""
        self.headers = _betas(value)
        """Headers the body calls for (the ``anthropic-beta`` of a feature it uses)."""

    def _set_aside(self, value: Any, marker: str) -> Any:
        """``value`` with each long plain string replaced by ``marker`` (and kept, in order)."""
        if isinstance(value, dict):
            return {key: self._set_aside(item, marker) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._set_aside(item, marker) for item in value]
        if isinstance(value, str) and len(value) >= LONG_STRING and _plain(value):
            self._strings.append(value)
            return marker
        return value

    def __iter__(self) -> Iterator[bytes]:
        """The bytes, in pieces, hashed on the way (each string is encoded once, to be sent)."""
        digest = hashlib.sha256(self._pieces[0])
        yield self._pieces[0]
        for string, piece in zip(self._strings, self._pieces[1:]):
            encoded = string.encode("ascii")
            digest.update(encoded)
            yield encoded
            digest.update(piece)
            yield piece
        self.sha256 = digest.hexdigest()

    def release(self) -> None:
        self._pieces, self._strings = [b""], []


class _AsyncRequestBody:
    """A :class:`RequestBody` for httpx's async client, which tells bodies apart by their methods."""

    def __init__(self, body: RequestBody) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.body:
            yield chunk


def request_sha256(body: dict[str, Any]) -> str:
    """The SHA-256 of ``body``'s bytes as the client would send them (to find an answer to
    the same request before sending it)."""
    content = RequestBody(body)
    for _ in content:
        pass
    assert content.sha256 is not None
    return content.sha256


def _betas(body: Any) -> dict[str, str]:
    """The ``anthropic-beta`` header a body needs: the MCP connector's, for ``mcp_servers``."""
    return {"anthropic-beta": MCP_BETA} if isinstance(body, dict) and body.get("mcp_servers") else {}


def _dumps(value: Any) -> str:
    """JSON as httpx writes it for ``json=``, its keys sorted: the same request is the same bytes
    whatever order its blocks' keys came in (an answer replayed from a saved notebook, whose
    file keeps keys sorted, is sent back as the streamed one was), so its hash names it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True)


def _plain(text: str) -> bool:
    """Text that JSON writes as it is (inside its quotes)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class _ClientBase:
    """``transport`` and ``auth`` are httpx's own seams: a transport to send through (a test's
    ``MockTransport``, a proxy's), and how requests authenticate (default: the credentials)."""

    def __init__(self, settings: ClientSettings | None = None, *, transport: Any = None, auth: httpx.Auth | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._transport = transport
        self._auth = auth if auth is not None else CredentialsAuth(self.settings.credentials)
        remember(self.settings.credentials.secrets())  # kept out of every file and preview from now on

    def __repr__(self) -> str:
        s = self.settings
        return f"{type(self).__name__}(base_url={s.base_url!r}, api_version={s.api_version!r}, credentials={s.credentials!r})"

    # --- requests -------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {
            "anthropic-version": self.settings.api_version,
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": f"claude-magic/{__version__}",
        }

    def _body_headers(self, body: RequestBody | None) -> dict[str, str]:
        if body is None:
            return self._headers()
        return {**self._headers(), **body.headers, "content-length": str(body.length)}

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.settings.timeout, connect=self.settings.connect_timeout)

    def message_body(self, request: MessageRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body for ``/v1/messages``, checked against the pinned API version."""
        body = request.to_wire()
        body["stream"] = stream
        version = self.settings.api_version
        rejected = [name for name in SAMPLING_PARAMETERS if name in body]
        if rejected and not accepts_sampling_parameters(version):
            raise ConfigurationError(
                f"{', '.join(rejected)} can't be sent under API version {version}, which rejects "
                "sampling parameters; leave it unset or use api_version 2023-06-01"
            )
        return body

    def count_tokens_body(self, request: MessageRequest) -> dict[str, Any]:
        body = self.message_body(request, stream=False)
        for name in _GENERATION_ONLY_FIELDS:
            body.pop(name, None)
        return body

    # --- failures -------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        """What no error may show: the credentials, and every secret a request carried (MCP tokens)."""
        return (*self.settings.credentials.secrets(), *remembered())

    def _error_from(self, response: httpx.Response) -> APIError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return api_error(
            response.status_code,
            body,
            request_id=response.headers.get("request-id"),
            retry_after=server_retry_after(response.headers),
            secrets=self._secrets(),
        )

    def _connection_error(self, exc: httpx.TransportError) -> APIConnectionError:
        where = redact(self.settings.base_url, self._secrets())
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer from {where} within the timeout ({type(exc).__name__})")
        reason = redact(str(exc) or type(exc).__name__, self._secrets())
        return APIConnectionError(f"could not reach {where}: {reason}")

    def _unexpected(self, response: httpx.Response, what: str) -> UnexpectedResponseError:
        where = redact(self.settings.base_url, self._secrets())
        kind = response.headers.get("content-type", "no content type")
        return UnexpectedResponseError(f"{where} answered {response.status_code} with {kind}, not {what}; is ANTHROPIC_BASE_URL the API?")

    def _parse(self, model: type[_Model], response: httpx.Response) -> _Model:
        """Validate a JSON answer; anything else is an :class:`UnexpectedResponseError`."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise self._unexpected(response, f"a {model.__name__}") from None

    def _check_event_stream(self, response: httpx.Response) -> None:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise self._unexpected(response, "an event stream")

    def _wait_before_retry(self, retries_taken: int, response: httpx.Response | None, error: ClaudeError) -> float | None:
        """Seconds to wait before another attempt, or None when this failure is final (a spend
        cap's 429 always is: no retry can help it)."""
        if retries_taken >= self.settings.max_retries:
            return None
        if response is None:
            return retry_delay({}, retries_taken)
        if isinstance(error, APIError) and not error.retryable:
            return None
        if not should_retry(response.status_code, response.headers):
            return None
        delay = retry_delay(response.headers, retries_taken)
        return delay if delay <= self.settings.max_retry_wait else None


class _StreamBase:
    """Decodes a 200 response's body into events and accumulates the answer."""

    def __init__(self, response: httpx.Response, secrets: tuple[str, ...], request_sha256: str | None = None) -> None:
        self.response = response
        self.request_id: str | None = response.headers.get("request-id")
        self.request_sha256 = request_sha256
        """The SHA-256 of the request body's bytes, as sent."""
        self.accumulator = MessageAccumulator()
        self._decoder = SSEDecoder()
        self._secrets = secrets

    def _events(self, sse_events: list[ServerSentEvent]) -> Iterator[StreamEvent]:
        for sse in sse_events:
            if not sse.data:
                continue
            try:
                event = parse_event(sse.event, sse.data)
            except ValidationError as exc:
                raise StreamInterrupted(f"malformed {sse.event or 'unnamed'} event in the stream: {exc.errors()[0]['msg']}") from None
            self.accumulator.add(event)
            if isinstance(event, ErrorEvent):
                envelope = {"error": event.error.model_dump(), "request_id": (event.model_extra or {}).get("request_id")}
                raise api_error(None, envelope, request_id=self.request_id, secrets=self._secrets)
            yield event

    def _check_complete(self) -> None:
        if not self.accumulator.complete:
            raise StreamInterrupted("the connection closed before the answer was complete")

    def _interrupted(self, exc: httpx.TransportError) -> StreamInterrupted:
        if isinstance(exc, httpx.TimeoutException):
            waited = (self.response.request.extensions.get("timeout") or {}).get("read")
            during = f"for {waited:g} s " if waited else ""
            return StreamInterrupted(f"the API sent nothing {during}mid-answer (read timeout; ClaudeMagics.timeout sets how long to wait)")
        return StreamInterrupted(f"the connection dropped mid-answer ({type(exc).__name__})")

    @property
    def message(self) -> Message:
        return self.accumulator.message()


class MessageStream(_StreamBase):
    """Iterate it for events; :attr:`accumulator` holds the answer so far, even after an error."""

    def __iter__(self) -> Iterator[StreamEvent]:
        try:
            for chunk in self.response.iter_bytes():
                yield from self._events(self._decoder.feed(chunk))
        except httpx.TransportError as exc:
            raise self._interrupted(exc) from None
        yield from self._events(self._decoder.flush())
        self._check_complete()

    def text_deltas(self) -> Iterator[str]:
        for event in self:
            if text := text_of(event):
                yield text


class AsyncMessageStream(_StreamBase):
    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        try:
            async for chunk in self.response.aiter_bytes():
                for event in self._events(self._decoder.feed(chunk)):
                    yield event
        except httpx.TransportError as exc:
            raise self._interrupted(exc) from None
        for event in self._events(self._decoder.flush()):
            yield event
        self._check_complete()

    async def text_deltas(self) -> AsyncIterator[str]:
        async for event in self:
            if text := text_of(event):
                yield text


class Client(_ClientBase):
    """Synchronous client. Use as a context manager or call :meth:`close`."""

    _http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self._timeout(), transport=self._transport, auth=self._auth)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, *, content: RequestBody | None = None, params: Any = None, stream: bool = False) -> httpx.Response:
        """Send with retries; returns a successful response (its body unread when ``stream``)."""
        request = self.http.build_request(method, self._url(path), content=content, params=params, headers=self._body_headers(content))
        try:
            return self._send_with_retries(request, stream)
        finally:
            if content is not None:
                content.release()

    def _send_with_retries(self, request: httpx.Request, stream: bool) -> httpx.Response:
        retries_taken = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.http.send(request, stream=True)
                if not (stream and response.is_success):
                    response.read()
            except httpx.TransportError as exc:
                if response is not None:
                    response.close()
                error: ClaudeError = self._connection_error(exc)
                response = None
            else:
                if response.is_success:
                    return response
                response.close()
                error = self._error_from(response)
            delay = self._wait_before_retry(retries_taken, response, error)
            if delay is None:
                raise error
            time.sleep(delay)
            retries_taken += 1

    @contextmanager
    def stream(self, request: MessageRequest) -> Iterator[MessageStream]:
        """Open a streaming request; the connection closes when the block exits."""
        content = RequestBody(self.message_body(request, stream=True))
        response = self._send("POST", "/v1/messages", content=content, stream=True)
        try:
            self._check_event_stream(response)
            yield MessageStream(response, self._secrets(), content.sha256)
        finally:
            response.close()


    def list_models(self) -> list[ModelInfo]:
        """Every model the key can use, newest first, following the pagination."""
        models: list[ModelInfo] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            page = self._parse(ModelPage, self._send("GET", "/v1/models", params=params))
            models += page.data
            if not page.has_more or not page.last_id:
                return models
            params["after_id"] = page.last_id

    def count_tokens(self, request: MessageRequest) -> int:
        response = self._send("POST", "/v1/messages/count_tokens", content=RequestBody(self.count_tokens_body(request)))
        return self._parse(TokenCount, response).input_tokens

    def server_usage(self) -> dict[str, Any]:
        """What every kernel of the Jupyter server whose proxy this client goes through spent
        (``GET {base_url}/usage``: its ledger's summary)."""
        response = self._send("GET", "/usage")
        try:
            summary = response.json()
        except ValueError:
            summary = None
        if not isinstance(summary, dict):
            raise self._unexpected(response, "the Jupyter server's usage")
        return summary


class AsyncClient(_ClientBase):
    """The asynchronous twin of :class:`Client`, for event-loop callers (the chat panel)."""

    _http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout(), transport=self._transport, auth=self._auth)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(
        self, method: str, path: str, *, content: RequestBody | None = None, params: Any = None, stream: bool = False
    ) -> httpx.Response:
        wrapped = _AsyncRequestBody(content) if content is not None else None
        request = self.http.build_request(method, self._url(path), content=wrapped, params=params, headers=self._body_headers(content))
        try:
            return await self._send_with_retries(request, stream)
        finally:
            if content is not None:
                content.release()

    async def _send_with_retries(self, request: httpx.Request, stream: bool) -> httpx.Response:
        retries_taken = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.http.send(request, stream=True)
                if not (stream and response.is_success):
                    await response.aread()
            except httpx.TransportError as exc:
                if response is not None:
                    await response.aclose()
                error: ClaudeError = self._connection_error(exc)
                response = None
            else:
                if response.is_success:
                    return response
                await response.aclose()
                error = self._error_from(response)
            delay = self._wait_before_retry(retries_taken, response, error)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            retries_taken += 1

    @asynccontextmanager
    async def stream(self, request: MessageRequest) -> AsyncIterator[AsyncMessageStream]:
        content = RequestBody(self.message_body(request, stream=True))
        response = await self._send("POST", "/v1/messages", content=content, stream=True)
        try:
            self._check_event_stream(response)
            yield AsyncMessageStream(response, self._secrets(), content.sha256)
        finally:
            await response.aclose()


    async def list_models(self) -> list[ModelInfo]:
        models: list[ModelInfo] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            page = self._parse(ModelPage, await self._send("GET", "/v1/models", params=params))
            models += page.data
            if not page.has_more or not page.last_id:
                return models
            params["after_id"] = page.last_id

    async def count_tokens(self, request: MessageRequest) -> int:
        response = await self._send("POST", "/v1/messages/count_tokens", content=RequestBody(self.count_tokens_body(request)))
        return self._parse(TokenCount, response).input_tokens
