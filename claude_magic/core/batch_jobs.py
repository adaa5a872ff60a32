"""A job's rows as Message Batches: submitted, kept with the notebook's data, waited for, and their
results read into the job (half the price of asking row by row, and no rate-limit pressure).

Each request's ``custom_id`` is its key in the answer cache (:func:`.answer_cache.request_key`, 64
hex digits: exactly what a ``custom_id`` may hold), so a result is matched to its rows, and a later
run of the same job, batched or not, finds the batch that answers each of its requests.

**What is kept** (``$CLAUDE_MAGIC_HOME/batches/<notebook>/``, private files): ``batches.jsonl``, one
line per event (a batch submitted, its results collected, its results gone), each batch's
``custom_id``s (``<id>.keys``), and each job's rows (``<job>.json``: each row's key, the index, the
schema), so :func:`claude_magic.batch_result` can rebuild a job's result after a restart.

**Running the same job again** sends no request twice: a row already in a batch of this notebook
that can still answer it is waited for and read from that batch (:meth:`BatchRun.cover`), not sent
again. The answers stay with the API (29 days), not in the answer cache: 100,000 files written one
by one would take longer than reading them back. A batch whose results were collected still covers
the rows it answered; the rows it did not answer (errored, canceled, expired) are sent again by the
next run, and so are those of a batch whose results are gone. Usage is logged once per batch, when
its results are first collected.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError

if TYPE_CHECKING:
    from ..api.batches import Batches, MessageBatch
    from .rows import Draw, RowsJob

FIRST_POLL = 1.0
"""Seconds before the first look at a batch; each later look waits twice as long, up to the most."""
WAIT_STEP = 0.05


class BatchJobError(ClaudeError):
    """A batch could not be submitted, waited for or read."""


@dataclass(frozen=True)
class RecordedBatch:
    """One submitted batch, as this notebook's records have it."""

    id: str
    job: str
    created: float
    requests: int
    model: str
    what: str
    collected: bool = False
    not_answered: frozenset[str] = frozenset()
    unavailable: bool = False


@dataclass
class BatchRecords:
    """This notebook's batches (see the module's docstring)."""

    folder: Path

    @classmethod
    def of(cls, notebook: str | None) -> BatchRecords:
        from .store import home, log_name

        return cls(home() / "batches" / log_name(notebook or "terminal"))

    @property
    def log(self) -> Path:
        return self.folder / "batches.jsonl"

    def _append(self, event: dict[str, Any]) -> None:
        from ..api.redaction import dumps

        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, (dumps({**event, "at": time.time()}) + "\n").encode())
        finally:
            os.close(handle)

    def save_job(self, job_id: str, rows: dict[str, Any]) -> None:
        from ..api.redaction import dumps
        from .store import write_atomically

        write_atomically(self.folder / f"{job_id}.json", dumps(rows).encode())

    def job(self, job_id: str) -> dict[str, Any]:
        try:
            return json.loads((self.folder / f"{job_id}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (OSError, ValueError) as error:
            raise BatchJobError(f"the rows of this batch's job could not be read ({type(error).__name__}): was its home moved?") from None

    def submitted(self, batch: MessageBatch, keys: list[str], job_id: str, model: str, what: str) -> None:
        from .store import write_atomically

        write_atomically(self.folder / f"{batch.id}.keys", "\n".join(keys).encode())
        self._append({"event": "submitted", "id": batch.id, "job": job_id, "requests": len(keys), "model": model, "what": what})

    def collected(self, batch_id: str, not_answered: Iterable[str]) -> None:
        self._append({"event": "collected", "id": batch_id, "not_answered": sorted(not_answered)})

    def unavailable(self, batch_id: str) -> None:
        self._append({"event": "unavailable", "id": batch_id})

    def keys(self, batch_id: str) -> list[str]:
        try:
            return (self.folder / f"{batch_id}.keys").read_text(encoding="ascii").split()
        except OSError:
            return []

    def batches(self) -> list[RecordedBatch]:
        """Every batch this notebook submitted, newest first."""
        found: dict[str, RecordedBatch] = {}
        for event in self._events():
            batch_id = str(event.get("id"))
            if event.get("event") == "submitted":
                found[batch_id] = RecordedBatch(batch_id, str(event.get("job")), float(event.get("at") or 0), int(event.get("requests") or 0), str(event.get("model")), str(event.get("what")))
            elif batch_id in found and event.get("event") == "collected":
                found[batch_id] = _replace(found[batch_id], collected=True, not_answered=frozenset(event.get("not_answered") or ()))
            elif batch_id in found and event.get("event") == "unavailable":
                found[batch_id] = _replace(found[batch_id], unavailable=True)
        return sorted(found.values(), key=lambda b: b.created, reverse=True)

    def find(self, batch_id: str) -> RecordedBatch | None:
        return next((b for b in self.batches() if b.id == batch_id), None)

    def _events(self) -> list[dict[str, Any]]:
        try:
            lines = self.log.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a crash: the others still count
        return events


def _replace(batch: RecordedBatch, **changes: Any) -> RecordedBatch:
    from dataclasses import replace

    return replace(batch, **changes)


@dataclass
class BatchRun:
    """A job's pending rows answered by batches: those of this notebook that cover them, and new ones."""

    job: RowsJob
    records: BatchRecords
    batches: Batches
    notebook_job: str = field(default_factory=lambda: f"job-{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}")
    covering: dict[str, set[str]] = field(default_factory=dict)
    """Batch id → the pending keys it answers."""
    state: dict[str, MessageBatch] = field(default_factory=dict)

    def cover(self, only: Iterable[str] | None = None) -> None:
        """The pending rows an earlier batch of this notebook answers (or will): waited for, not sent
        again (``only``: looking at these batches only)."""
        pending = set(self.job.pending)
        chosen = set(only) if only is not None else None
        for recorded in self.records.batches():
            if not pending:
                break
            if recorded.unavailable or (chosen is not None and recorded.id not in chosen):
                continue
            answers = pending.intersection(self.records.keys(recorded.id)) - recorded.not_answered
            if answers:
                self.covering[recorded.id] = answers
                pending -= answers

    @property
    def uncovered(self) -> list[str]:
        covered = set().union(*self.covering.values()) if self.covering else set()
        return [key for key in self.job.pending if key not in covered]

    def submit(self, what: str, rows: dict[str, Any]) -> list[str]:
        """New batches for the rows no batch covers (split within the API's limits); their ids."""
        from ..api.batches import batch_bodies

        keys = self.uncovered
        if not keys:
            return []
        self.records.save_job(self.notebook_job, rows)
        requests = ((key, self.job.request_body(key)) for key in keys)
        submitted = []
        for body in batch_bodies(requests):
            batch = self.batches.create(body)
            self.records.submitted(batch, body.ids, self.notebook_job, self.job.options.model, what)
            self.covering[batch.id] = set(body.ids)
            self.state[batch.id] = batch
            submitted.append(batch.id)
        return submitted

    def wait(self, draw: Draw, longest_wait: float, sleep: Callable[[float], None] = time.sleep) -> bool:
        """Poll every batch until all have ended (at 1, 2, 4 … up to ``longest_wait`` seconds apart),
        drawing the progress; False when Ctrl-C stopped the waiting (the batches go on)."""
        delay = FIRST_POLL
        try:
            while True:
                for batch_id in self.covering:
                    if batch_id not in self.state or not self.state[batch_id].ended:
                        self.state[batch_id] = self.batches.retrieve(batch_id)
                self.job.progress.status = self.status()
                draw(self.job.progress)
                if all(batch.ended for batch in self.state.values()):
                    return True
                waited = 0.0
                while waited < delay:
                    sleep(WAIT_STEP)
                    waited += WAIT_STEP
                    draw(self.job.progress)
                delay = min(delay * 2, longest_wait)
        except KeyboardInterrupt:
            return False

    def status(self) -> str:
        """The batches' state in a few words."""
        states = list(self.state.values())
        processing = sum(b.request_counts.processing for b in states if not b.ended)
        ended = sum(b.ended for b in states)
        which = states[0].id if len(states) == 1 else f"{len(states)} batches ({ended} ended)"
        if ended == len(states):
            return f"{which}: ended, reading the results"
        return f"{which}: {processing:,} requests processing (most batches end within an hour, all within 24 h)"

    def not_ended(self) -> list[str]:
        """The batches still processing when last looked at."""
        return [batch_id for batch_id in self.covering if batch_id not in self.state or not self.state[batch_id].ended]

    def leave_waiting(self, batch_id: str, why: str) -> None:
        """The rows of a batch not ended yet get ``why`` (the job ends without them)."""
        for key in self.covering[batch_id] & self.job.pending.keys():
            self.job.settle(key, _unanswered(self.job, why))

    def collect(self, draw: Draw) -> None:
        """Read every ended batch's results into the job."""
        for batch_id, keys in self.covering.items():
            if batch_id in self.state and self.state[batch_id].ended:
                self._collect(batch_id, keys, draw)

    def _collect(self, batch_id: str, keys: set[str], draw: Draw) -> None:
        from ..api.errors import NotFoundError

        recorded = self.records.find(batch_id)
        first_time = recorded is None or not recorded.collected
        usage: dict[str, dict[str, Any]] = {}
        not_answered: set[str] = set()
        try:
            for line in self.batches.results(batch_id):
                key, result = line["custom_id"], line["result"]
                if result.get("type") != "succeeded":
                    not_answered.add(key)
                if key in keys and key in self.job.pending:
                    self._settle(key, result, usage)
                    draw(self.job.progress)
        except NotFoundError:
            self.records.unavailable(batch_id)
            for key in keys & self.job.pending.keys():
                self.job.settle(key, _unanswered(self.job, f"the results of batch {batch_id} are no longer available (archived): run again to send this row"))
            return
        if first_time:
            self.records.collected(batch_id, not_answered)
            for model, summed in usage.items():
                self.job.session.tally(model, summed, log=True)

    def _settle(self, key: str, result: dict[str, Any], usage: dict[str, dict[str, Any]]) -> None:
        kind = result.get("type")
        if kind == "succeeded":
            message = result["message"]
            _add_usage(usage.setdefault(str(message.get("model")), {"service_tier": "batch"}), message.get("usage") or {})
            self.job.settle(key, self.job.outcome_of_wire(message))
        elif kind == "errored":
            error = (result.get("error") or {}).get("error") or {}
            self.job.settle(key, _unanswered(self.job, f"the batch answered with an error: {error.get('type', 'error')}: {error.get('message', '')}"))
        else:
            why = {"canceled": "the batch was canceled", "expired": "the batch took more than 24 hours"}.get(str(kind), f"the batch's result is {kind}")
            self.job.settle(key, _unanswered(self.job, f"not answered: {why}; run again to send this row"))


def _unanswered(job: RowsJob, why: str) -> Any:
    from .rows import Outcome

    return Outcome((None,) * len(job.columns), why)


_SUMMED = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for name in _SUMMED:
        total[name] = total.get(name, 0) + (usage.get(name) or 0)
