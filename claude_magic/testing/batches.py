"""Message Batches in the stand-in: what a batch holds, its clock, and the API's rules for it.

A batch is created ``in_progress`` and ends ``processing_seconds`` after it was created, on the
stand-in's batch clock: real time multiplied by ``speed`` (tests speed it up), plus whatever
:meth:`BatchQueue.advance` added. When it ends, every request is answered as a non-streamed
``/v1/messages`` call would be (scripted replies and faults apply, in the batch's order; usage
says ``"service_tier": "batch"``); a request whose params the Messages API would refuse is
``errored`` with that error, as the API validates params only when it processes them. A batch
canceled before it ended ends ``canceling_seconds`` later with every request ``canceled``; one
still in progress 24 hours after it was created ends with every request ``expired``. Results
are available once a batch has ended, in JSON Lines, in no particular order (here: by
``custom_id``), until 29 days after it was created (then it is archived).

Creation checks what the API checks at once: a JSON object with 1 to 100,000 ``requests``, each
with a ``custom_id`` of 1 to 64 of ``[A-Za-z0-9_-]``, unique in the batch, and ``params`` that
are an object (without ``stream: true``); the whole body within 256 MB.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .rules import APIFailure

MAX_REQUESTS = 100_000
MAX_BATCH_BYTES = 256_000_000
DAY = 24 * 3600.0
RESULTS_KEPT = 29 * DAY
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

Answer = Callable[[dict[str, Any]], dict[str, Any]]
"""Answers one request's params: its ``result`` (``succeeded`` with a message, or ``errored``)."""


@dataclass
class StoredBatch:
    id: str
    created: float
    """On the batch clock (seconds since the epoch)."""
    ends: float
    requests: list[tuple[str, str]]
    """``custom_id`` and the params' JSON, kept as text until the batch is processed."""
    cancel_initiated: float | None = None
    ended: float | None = None
    results: list[bytes] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchQueue:
    """The stand-in's batches, newest last, and the clock they run on."""

    speed: float = 1.0
    """Batch-clock seconds a real second."""
    processing_seconds: float = 1.0
    """How long a batch takes, on the batch clock."""
    canceling_seconds: float = 0.5
    batches: dict[str, StoredBatch] = field(default_factory=dict, repr=False)
    _advanced: float = 0.0
    _started_real: float = field(default_factory=time.monotonic, repr=False)
    _started_wall: float = field(default_factory=time.time, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _ids: int = 0

    def now(self) -> float:
        """The batch clock: seconds since the epoch."""
        return self._started_wall + (time.monotonic() - self._started_real) * self.speed + self._advanced

    def advance(self, seconds: float) -> None:
        """Move the batch clock forward (a batch's day passes in no time)."""
        with self._lock:
            self._advanced += seconds

    def clear(self) -> None:
        with self._lock:
            self.batches.clear()

    # --- the routes' work -------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        requests = _checked_requests(body)
        with self._lock:
            self._ids += 1
            now = self.now()
            batch = StoredBatch(f"msgbatch_standin_{self._ids:06d}", now, now + self.processing_seconds, requests)
            self.batches[batch.id] = batch
        return self.describe(batch, answer=None)

    def get(self, batch_id: str) -> StoredBatch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise APIFailure(404, f"message_batch: {batch_id}")
        return batch

    def describe(self, batch: StoredBatch, answer: Answer | None, base_url: str = "") -> dict[str, Any]:
        """The batch as the API shows it, processed first when its time has come (``answer``)."""
        if answer is not None:
            self._settle(batch, answer)
        ended = batch.ended is not None
        counts = batch.counts if ended else {"processing": len(batch.requests)}
        archived = batch.created + RESULTS_KEPT <= self.now()
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "canceling" if batch.cancel_initiated is not None else "in_progress",
            "request_counts": {kind: counts.get(kind, 0) for kind in ("processing", "succeeded", "errored", "canceled", "expired")},
            "created_at": _rfc3339(batch.created),
            "expires_at": _rfc3339(batch.created + DAY),
            "ended_at": _rfc3339(batch.ended) if batch.ended is not None else None,
            "cancel_initiated_at": _rfc3339(batch.cancel_initiated) if batch.cancel_initiated is not None else None,
            "archived_at": _rfc3339(batch.created + RESULTS_KEPT) if archived else None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended and not archived else None,
        }

    def cancel(self, batch_id: str, answer: Answer) -> StoredBatch:
        batch = self.get(batch_id)
        self._settle(batch, answer)
        with self._lock:
            if batch.ended is None and batch.cancel_initiated is None:
                batch.cancel_initiated = self.now()
        return batch

    def delete(self, batch_id: str, answer: Answer) -> None:
        batch = self.get(batch_id)
        self._settle(batch, answer)
        if batch.ended is None:
            raise APIFailure(409, f"Batch {batch_id} is still being processed: cancel it first, then delete it once it has ended.")
        with self._lock:
            del self.batches[batch_id]

    def results(self, batch_id: str, answer: Answer) -> Iterator[bytes]:
        batch = self.get(batch_id)
        self._settle(batch, answer)
        if batch.ended is None:
            raise APIFailure(404, f"Batch {batch_id} has not ended yet: its results are not available.")
        if batch.created + RESULTS_KEPT <= self.now():
            raise APIFailure(404, f"Batch {batch_id} was archived: its results are no longer available.")
        return iter(batch.results)

    # --- processing -------------------------------------------------------------------------------

    def _settle(self, batch: StoredBatch, answer: Answer) -> None:
        """End the batch if its time has come: processed, canceled or expired."""
        with self._lock:
            if batch.ended is not None:
                return
            now = self.now()
            if batch.cancel_initiated is not None and now >= batch.cancel_initiated + self.canceling_seconds:
                self._end(batch, batch.cancel_initiated + self.canceling_seconds, lambda params: {"type": "canceled"})
            elif batch.cancel_initiated is None and now >= batch.ends and batch.ends < batch.created + DAY:
                self._end(batch, batch.ends, answer)
            elif now >= batch.created + DAY:
                self._end(batch, batch.created + DAY, lambda params: {"type": "expired"})

    def _end(self, batch: StoredBatch, when: float, answer: Answer) -> None:
        results = []
        counts: dict[str, int] = {}
        for custom_id, params in sorted(batch.requests):
            result = answer(json.loads(params))
            counts[result["type"]] = counts.get(result["type"], 0) + 1
            results.append(json.dumps({"custom_id": custom_id, "result": result}, ensure_ascii=False).encode() + b"\n")
        batch.results, batch.counts, batch.ended, batch.requests = results, counts, when, []


def _checked_requests(body: Any) -> list[tuple[str, str]]:
    if not isinstance(body, dict) or "requests" not in body:
        raise APIFailure(400, "requests: Field required")
    requests = body["requests"]
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_REQUESTS:
        raise APIFailure(400, f"requests: a batch holds 1 to {MAX_REQUESTS:,} requests")
    seen: set[str] = set()
    kept = []
    for i, request in enumerate(requests):
        custom_id = request.get("custom_id") if isinstance(request, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
            raise APIFailure(400, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if custom_id in seen:
            raise APIFailure(400, f"requests.{i}.custom_id: '{custom_id}' is not unique in this batch")
        seen.add(custom_id)
        params = request.get("params")
        if not isinstance(params, dict):
            raise APIFailure(400, f"requests.{i}.params: Input should be a valid dictionary")
        if params.get("stream"):
            raise APIFailure(400, f"requests.{i}.params.stream: streaming is not supported in a batch")
        kept.append((custom_id, json.dumps(params, ensure_ascii=False)))
    return kept


def page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of ``items`` (newest first) as the API's lists are paginated: ``limit`` (1 to 1000,
    default 20), ``after_id`` / ``before_id`` cursors, ``has_more``, ``first_id`` and ``last_id``."""
    limit = max(1, min(int((query.get("limit") or ["20"])[0]), 1000))
    ids = [item["id"] for item in items]
    start, end = 0, len(ids)
    if after := _first(query, "after_id"):
        start = ids.index(after) + 1 if after in ids else len(ids)
    before = _first(query, "before_id")
    if before:
        end = ids.index(before) if before in ids else 0
        start = max(start, end - limit)
    chosen = items[start : min(end, start + limit)]
    has_more = (start + limit < end) if not before else start > 0
    return {"data": chosen, "has_more": has_more, "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
