"""The Message Batches API: many message requests sent as one batch, answered within 24 hours at
half the price, with no rate-limit pressure.

Routes (protocol notes §1): ``POST /v1/messages/batches`` creates a batch, ``GET .../{id}``
retrieves it (poll it until ``processing_status`` is ``ended``), ``GET /v1/messages/batches``
lists them (newest first, paginated as the models are), ``POST .../{id}/cancel`` cancels one,
``GET .../{id}/results`` streams its results as JSON Lines (one ``{custom_id, result}`` a
request, in no particular order), ``DELETE .../{id}`` deletes an ended one.

Limits: at most 100,000 requests and 256 MB a batch; each request's ``custom_id`` is 1 to 64 of
``[A-Za-z0-9_-]``, unique in its batch. :func:`batch_bodies` splits requests into bodies within
them, built from each request's JSON as bytes: 100,000 requests held as Python dicts would take
a few hundred MB, their JSON about 30, and it is sent from those pieces (never joined into one
copy). Results are read a line at a time.

Creating a batch is never retried: the API has no idempotency key, and a retry after a response
that was lost would submit (and bill) the batch twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from .errors import ClaudeError
from .protocol import WireModel

if TYPE_CHECKING:
    from .client import Client

BATCHES_PATH = "/v1/messages/batches"
MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BatchRequestCounts(WireModel):
    """Requests by state; all ``processing`` until the whole batch has ended."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0


class MessageBatch(WireModel):
    id: str
    type: str = "message_batch"
    processing_status: str
    """``in_progress``, ``canceling`` or ``ended``."""
    request_counts: BatchRequestCounts = BatchRequestCounts()
    created_at: str | None = None
    expires_at: str | None = None
    ended_at: str | None = None
    cancel_initiated_at: str | None = None
    archived_at: str | None = None
    results_url: str | None = None

    @property
    def ended(self) -> bool:
        return self.processing_status == "ended"


class BatchPage(WireModel):
    data: list[MessageBatch]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class BatchBody:
    """A create body, ``{"requests": [...]}``, as the JSON of each request: iterate it for its bytes."""

    HEAD, SEPARATOR, TAIL = b'{"requests":[', b",", b"]}"

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.pieces: list[bytes] = []
        self.length = len(self.HEAD) + len(self.TAIL)

    def fits(self, piece: bytes, max_requests: int, max_bytes: int) -> bool:
        return not self.pieces or (len(self.pieces) < max_requests and self.length + len(self.SEPARATOR) + len(piece) <= max_bytes)

    def add(self, custom_id: str, piece: bytes) -> None:
        self.length += len(piece) + (len(self.SEPARATOR) if self.pieces else 0)
        self.ids.append(custom_id)
        self.pieces.append(piece)

    def __iter__(self) -> Iterator[bytes]:
        yield self.HEAD
        for index, piece in enumerate(self.pieces):
            yield self.SEPARATOR + piece if index else piece
        yield self.TAIL

    def __bytes__(self) -> bytes:
        return b"".join(self)


def batch_bodies(requests: Iterable[tuple[str, dict[str, Any]]], max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES) -> Iterator[BatchBody]:
    """Create bodies for ``requests`` (``custom_id``, message params), each within the limits."""
    body = BatchBody()
    for custom_id, params in requests:
        if not CUSTOM_ID.fullmatch(custom_id):
            raise ValueError(f"custom_id {custom_id!r}: 1 to 64 letters, digits, _ or -")
        piece = json.dumps({"custom_id": custom_id, "params": params}, ensure_ascii=False, separators=(",", ":")).encode()
        if BatchBody().length + len(piece) > max_bytes:
            raise ValueError(f"one request of {len(piece):,} bytes is more than a batch may hold ({max_bytes:,})")
        if not body.fits(piece, max_requests, max_bytes):
            yield body
            body = BatchBody()
        body.add(custom_id, piece)
    if body.pieces:
        yield body


class Batches:
    """The batch routes, on a :class:`~.client.Client` (its settings, retries and errors)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def create(self, body: BatchBody) -> MessageBatch:
        """Submit a body made by :func:`batch_bodies` (sent once: see the module's docstring)."""
        client = self.client
        headers = {**client._headers(), "content-length": str(body.length)}
        request = client.http.build_request("POST", client._url(BATCHES_PATH), content=iter(body), headers=headers)
        try:
            response = client.http.send(request)
        except httpx.TransportError as exc:
            raise client._connection_error(exc) from None
        if not response.is_success:
            raise client._error_from(response)
        return client._parse(MessageBatch, response)

    def retrieve(self, batch_id: str) -> MessageBatch:
        return self.client._parse(MessageBatch, self.client._send("GET", f"{BATCHES_PATH}/{_checked(batch_id)}"))

    def cancel(self, batch_id: str) -> MessageBatch:
        return self.client._parse(MessageBatch, self.client._send("POST", f"{BATCHES_PATH}/{_checked(batch_id)}/cancel"))

    def delete(self, batch_id: str) -> None:
        self.client._send("DELETE", f"{BATCHES_PATH}/{_checked(batch_id)}")

    def list(self, page_size: int = 100) -> Iterator[MessageBatch]:
        """Every batch, newest first, following the pagination."""
        params: dict[str, Any] = {"limit": page_size}
        while True:
            page = self.client._parse(BatchPage, self.client._send("GET", BATCHES_PATH, params=params))
            yield from page.data
            if not page.has_more or not page.last_id:
                return
            params["after_id"] = page.last_id

    def results(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The results of an ended batch, one ``{custom_id, result}`` at a time, as they arrive."""
        response = self.client._send("GET", f"{BATCHES_PATH}/{_checked(batch_id)}/results", stream=True)
        try:
            for line in response.iter_lines():
                if line.strip():
                    yield _result(line)
        except httpx.TransportError as exc:
            raise self.client._connection_error(exc) from None
        finally:
            response.close()


def _result(line: str) -> dict[str, Any]:
    try:
        result = json.loads(line)
    except ValueError:
        raise BatchResultError(f"a line of the batch's results is not JSON: {line[:80]!r}") from None
    if not isinstance(result, dict) or not isinstance(result.get("custom_id"), str) or not isinstance(result.get("result"), dict):
        raise BatchResultError(f"a line of the batch's results has no custom_id and result: {line[:80]!r}")
    return result


def _checked(batch_id: str) -> str:
    """A batch id as one path segment (it comes from the user: never a path of its own)."""
    if not isinstance(batch_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", batch_id):
        raise NotABatchId(f"{batch_id!r} is not a batch id (they look like msgbatch_…)")
    return batch_id


class BatchResultError(ClaudeError):
    """The batch's results could not be read."""


class NotABatchId(ClaudeError):
    """What was given as a batch id can't be one."""
