"""A job over rows: the same question asked of every row of a table, each answer a row of the result.

Data scientists' most common task with a model in a notebook is "classify / extract / summarise each
of these 5,000 rows". A job does it in three steps:

1. **Plan** (:meth:`RowsJob.plan`): each row's question (made by the caller: a template filled
   from the row, its attachments) becomes the exact request a one-off question sends (no history;
   the session's prompt-cache marks, the answer's schema), and that request's key in the answer
   cache (:func:`.answer_cache.request_key`). A row whose request was answered before is answered
   from the cache now: a re-run, or a run after a kernel restart, sends only the rows not yet
   answered. Identical requests are sent once, and their answer fills every row that asked it.
2. **Ask** the rest: concurrently here (:meth:`RowsJob.ask_all`, at most ``concurrency`` requests
   in flight, paced under the rate limits by :mod:`claude_magic.api.pacing` when the kernel paces
   itself), each through the turn engine as a one-off question (so retries, thinking, tools and the
   answer cache are the single question's); or as a Message Batch (:mod:`.batch_jobs`). Every
   finished row is kept in the answer cache at once. An interrupt stops every request and leaves
   the unfinished rows unanswered, so the next run sends only those.
3. **Result** (:meth:`RowsJob.result`): one row per input row, in its order: the answer's text, or
   its fields when a schema was asked for (each answer checked by pydantic: one that doesn't follow
   the schema has its reason in the ``error`` column, never a crash), usage and cost on request.

Concurrency runs on an event loop in a worker thread; the caller's thread waits, draws the progress
it is given at a bounded rate, and turns Ctrl-C into cancelling every request.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError
from ..defaults import DEFAULT_CONCURRENCY
from .session import ANSWER_TOOL, AskOptions

if TYPE_CHECKING:

    import httpx

    from ..api.client import AsyncClient
    from ..api.limiter import RateLimiter
    from ..api.protocol import Message
    from ..api.settings import ClientSettings
    from .engine import Answer
    from .schemas import AnswerSchema
    from .session import ClaudeSession
    from .spending import CostRange
    from .table import Rows

INTERRUPTED = "not answered: interrupted (run it again to send only the rows not yet answered)"
TEXT_COLUMN = "answer"
ERROR_COLUMN = "error"
USAGE_COLUMNS = ("input_tokens", "output_tokens", "cost")
POLL_SECONDS = 0.05
SAMPLE_SIZE = 5
"""Rows whose input tokens are counted by the server to estimate a job's cost."""

MakeQuestion = Callable[[int], list[dict[str, Any]]]
"""Row position → the row's question (content blocks); raises :class:`RowQuestionError` for a row
that can't be asked (its error goes in its ``error`` column; the other rows go on)."""
Draw = Callable[["Progress"], None]


class RowQuestionError(ClaudeError):
    """One row's question could not be made (a value that can't be looked up or shown)."""


@dataclass(slots=True)
class Outcome:
    """What became of one request: its values (the schema's fields, or the text), or why not."""

    values: tuple[Any, ...]
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None


@dataclass
class Progress:
    """A job's progress, written by the job and read by whoever draws it (any thread)."""

    total: int
    done: int = 0
    failed: int = 0
    from_cache: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    dollars: float = 0.0
    unpriced: bool = False
    started: float = field(default_factory=time.monotonic)
    waiting: Callable[[], int] = lambda: 0
    """Requests waiting for room in the rate limits now."""
    status: str = ""
    """What the job is doing, when not asking row by row (a batch being processed)."""
    finished: bool = False

    def count(self, outcome: Outcome, rows: int, *, cached: bool = False) -> None:
        """``rows`` rows got ``outcome`` (from the answer cache: done before the job, costing nothing now)."""
        if cached:
            self.from_cache += rows
        elif outcome.error is not None:
            self.failed += rows
        else:
            self.done += rows
        if not cached:
            self.input_tokens += outcome.input_tokens
            self.output_tokens += outcome.output_tokens
            if outcome.cost is None:
                self.unpriced = True
            else:
                self.dollars += outcome.cost

    @property
    def answered(self) -> int:
        return self.done + self.failed + self.from_cache

    @property
    def asked(self) -> int:
        """Rows answered by this job's requests (not from the cache)."""
        return self.done + self.failed

    def seconds_left(self) -> float | None:
        """At the pace so far; None before any row was asked."""
        if not self.asked or self.answered >= self.total:
            return None
        return (time.monotonic() - self.started) / self.asked * (self.total - self.answered)

    def projected_dollars(self) -> float | None:
        """What the whole job will cost at the average so far; None before any row was asked."""
        if not self.asked:
            return None
        return self.dollars / self.asked * (self.total - self.from_cache)


@dataclass
class RowsJob:
    """One question over many rows (see the module's docstring)."""

    session: ClaudeSession
    settings: ClientSettings
    options: AskOptions
    rows: Rows
    make_question: MakeQuestion
    schema: AnswerSchema | None = None
    describe_error: Callable[[BaseException], str] = str
    """An error as the one line a row's ``error`` column shows."""
    concurrency: int = DEFAULT_CONCURRENCY
    limiter: RateLimiter | None = None
    """Pace requests under the rate limits with this (None: another does, or nobody)."""

    keys: list[str | None] = field(default_factory=list)
    """Each row's request key (None: its question could not be made; see ``row_errors``)."""
    pending: dict[str, int] = field(default_factory=dict)
    """Each request not answered yet, and the first row that asks it (its question is made again
    when it is sent: 100,000 questions kept would weigh more than the rows they come from)."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    row_errors: dict[int, str] = field(default_factory=dict)
    progress: Progress = field(default_factory=lambda: Progress(0))
    _rows_of: Counter[str] = field(default_factory=Counter)

    # --- 1. plan ------------------------------------------------------------------------------

    def plan(self) -> None:
        """Each row's request and key; rows answered before are answered from the cache now."""
        from .answer_cache import request_key

        client = self.session.client(self.settings)
        keys: list[str | None] = []
        errors: dict[int, str] = {}
        first_rows: dict[str, int] = {}
        for position in range(len(self.rows)):
            try:
                question = self.make_question(position)
            except RowQuestionError as error:
                keys.append(None)
                errors[position] = str(error)
                continue
            body = client.message_body(self.session.prepare(question, self.options).request, stream=True)
            key = request_key(body, self.settings.api_version, self.settings.base_url)
            keys.append(key)
            first_rows.setdefault(key, position)
        self.restore(keys, errors, first_rows)

    def restore(self, keys: list[str | None], row_errors: dict[int, str], first_rows: dict[str, int] | None = None) -> None:
        """Take each row's key (None: its question failed, for the reason in ``row_errors``); answer
        those the cache holds, and keep the others pending (with the row that asks each, when known)."""
        cache = self.session.answer_cache
        self.keys, self.row_errors = keys, row_errors
        self._rows_of = Counter(key for key in keys if key is not None)
        self.progress = Progress(len(keys), failed=len(row_errors))
        for key in self._rows_of:
            hit = cache.get(key) if not self.options.fresh else None
            if hit is None:
                self.pending[key] = (first_rows or {}).get(key, -1)
            else:
                self.outcomes[key] = outcome = self.outcome_of_wire(hit.message)
                self.progress.count(outcome, self._rows_of[key], cached=True)

    @property
    def pending_rows(self) -> int:
        """Rows whose requests are still to be answered."""
        return self.rows_of(self.pending)

    def rows_of(self, keys: Iterable[str]) -> int:
        """The rows these requests answer."""
        return sum(self._rows_of[key] for key in keys)

    def question(self, key: str) -> list[dict[str, Any]]:
        """The question of a pending request (of the first row that asks it)."""
        return self.make_question(self.pending[key])

    def request_body(self, key: str) -> dict[str, Any]:
        """The body a pending request is sent with, as a Message Batch takes it (no ``stream``)."""
        body = self.session.client(self.settings).message_body(self.session.prepare(self.question(key), self.options).request, stream=False)
        body.pop("stream", None)
        return body

    def estimate(self, count_tokens: Callable[[Any], int] | None, *, keys: Iterable[str], batch: bool = False) -> CostRange:
        """What asking the pending requests ``keys`` may cost: a sample's input tokens (counted by
        the server when ``count_tokens`` answers, else estimated locally) scaled to all of them, and
        at most ``max_tokens`` of output each."""
        from .spending import CostRange, estimate

        chosen = list(keys)
        if not chosen:
            return CostRange(self.options.model, 0, 0, 0, 0.0, 0.0)
        step = max(len(chosen) // SAMPLE_SIZE, 1)
        ranges = []
        for key in chosen[::step][:SAMPLE_SIZE]:
            request = self.session.prepare(self.question(key), self.options).request
            counted = _counted_or_none(count_tokens, request)
            ranges.append(estimate(request.model, self.session.client(self.settings).message_body(request, stream=True), counted, batch=batch))
        return _scaled(ranges, len(chosen))

    # --- 2. ask -------------------------------------------------------------------------------

    def ask_all(self, draw: Draw) -> bool:
        """Ask every pending request; True when all were asked, False when Ctrl-C stopped the job
        (the unfinished rows stay pending). ``draw`` is called on the caller's thread."""
        import asyncio

        from .background import Spawn, run_while_drawing

        if not self.pending:
            return True

        async def ask_every_row(spawn: Spawn) -> None:
            client = self.session.job_client(self.settings, self._paced if self.limiter is not None else None)
            try:
                with self.session.answer_cache.deferred_eviction():
                    work = iter(list(self.pending))
                    workers = [spawn(self._worker(work, client)) for _ in range(max(self.concurrency, 1))]
                    await asyncio.gather(*workers, return_exceptions=True)
            finally:
                await client.aclose()

        finished = run_while_drawing(ask_every_row, lambda: draw(self.progress), poll=POLL_SECONDS, grace=10, name="claude-rows")
        return finished and not self.pending

    def _paced(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        """``inner`` pacing message requests under :attr:`limiter` (its waiting requests shown)."""
        from ..api.pacing import PacedTransport

        assert self.limiter is not None
        paced = PacedTransport(inner, self.limiter)
        self.progress.waiting = lambda: paced.waiting
        return paced

    async def _worker(self, work: Iterator[str], client: AsyncClient) -> None:
        for key in work:
            outcome = await self._ask_one(self.question(key), client)
            self.settle(key, outcome)

    def settle(self, key: str, outcome: Outcome) -> None:
        """A request's outcome: its rows are answered (the answer itself is in the cache already)."""
        self.outcomes[key] = outcome
        self.pending.pop(key, None)
        self.progress.count(outcome, self._rows_of[key])

    async def _ask_one(self, question: list[dict[str, Any]], client: AsyncClient) -> Outcome:
        """One request through the turn engine; a failure is the row's error. Cancelling it
        (an interrupt) leaves the row unanswered."""
        import asyncio

        from ..api.limiter import RequestTooLarge, counted_usage
        from ..api.pacing import PACE, Pace
        from .budget import local_tokens
        from .engine import AnswerCutOff, ask_async

        pace = Pace(local_tokens([{"role": "user", "content": question}], self.options.system), self.options.max_tokens)
        PACE.set(pace)
        try:
            answer = await ask_async(self.session, question, self.options, self.settings, _Unshown, client=client)
        except AnswerCutOff as cut:
            if isinstance(cut.cause, asyncio.CancelledError):
                raise cut.cause from None
            return self._failed(self.describe_error(cut.cause), cut.answer)
        except (ClaudeError, RequestTooLarge) as error:
            return Outcome(self._no_values(), self.describe_error(error))
        if self.limiter is not None and pace.grant is not None:
            input_tokens, output_tokens = counted_usage(answer.usage)
            self.limiter.settle(pace.grant, input_tokens=input_tokens, output_tokens=output_tokens)
        return self.outcome_of(answer.message, answer.usage, answer.model) if answer.message else self._failed("no answer", answer)

    def _failed(self, error: str, answer: Answer) -> Outcome:
        return Outcome(self._no_values(), error, *self._usage_of(answer.usage, answer.model))

    # --- 3. outcomes and the result -----------------------------------------------------------

    def outcome_of_wire(self, message: dict[str, Any]) -> Outcome:
        """The outcome of an answer kept as the API sent it (the answer cache, a batch's results)."""
        from ..api.protocol import Message

        parsed = Message.model_validate(message)
        return self.outcome_of(parsed, message.get("usage") or {}, parsed.model)

    def outcome_of(self, message: Message, usage: dict[str, Any], model: str) -> Outcome:
        """An answer as the row's values, or the reason it can't be one."""
        tokens = self._usage_of(usage, model)
        if message.stop_reason == "refusal":
            return Outcome(self._no_values(), "the model declined to answer (stop_reason: refusal)", *tokens)
        if self.schema is None:
            cut = f"cut off at max_tokens ({self.options.max_tokens}); the text is what arrived" if message.stop_reason == "max_tokens" else None
            return Outcome((message.text,), cut, *tokens)
        value, why = self._structured(message)
        if why is not None:
            return Outcome(self._no_values(), why, *tokens)
        from .schemas import AnswerMismatch

        try:
            fields = self.schema.row(value)
        except AnswerMismatch as mismatch:
            return Outcome(self._no_values(), f"the answer does not follow the schema: {mismatch}", *tokens)
        return Outcome(tuple(fields.get(name) for name in self.schema.fields), None, *tokens)

    def _structured(self, message: Message) -> tuple[Any, str | None]:
        """The answer's JSON value, from its text (structured outputs) or its answer tool's input."""
        from ..api.protocol import ToolUseBlock

        if self.options.answer_tool:
            calls = [b for b in message.content if isinstance(b, ToolUseBlock) and b.name == ANSWER_TOOL]
            return (calls[0].input, None) if calls else (None, "the model did not answer with the answer tool")
        try:
            return json.loads(message.text), None
        except json.JSONDecodeError as error:
            if message.stop_reason == "max_tokens":
                return None, f"cut off at max_tokens ({self.options.max_tokens}) before the answer's JSON ended: raise max_tokens"
            return None, f"the answer is not JSON ({error.msg} at {error.pos}): {message.text[:60]!r}"

    def _usage_of(self, usage: dict[str, Any], model: str) -> tuple[int, int, float | None]:
        """Input tokens (all kinds), output tokens and cost (None: the model has no price)."""
        from .pricing import TokenUsage, cost

        tokens = TokenUsage.from_api(usage)
        return tokens.prompt, tokens.output, cost(model, usage) if usage else 0.0

    def _no_values(self) -> tuple[Any, ...]:
        return (None,) * len(self.columns)

    @property
    def columns(self) -> tuple[str, ...]:
        """The answer's columns: the schema's fields, or the text."""
        return self.schema.fields if self.schema is not None else (TEXT_COLUMN,)

    def result(self, *, usage: bool = False) -> Any:
        """One row per input row, in its order (the input's kind: see :func:`.table.result_like`);
        a row not answered yet has its reason in ``error``."""
        from .table import result_like

        names = [*self.columns, ERROR_COLUMN, *(USAGE_COLUMNS if usage else ())]
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for position, key in enumerate(self.keys):
            outcome = self.outcomes.get(key) if key is not None else None
            if outcome is None:
                outcome = Outcome(self._no_values(), self.row_errors.get(position, INTERRUPTED))
            row = (*outcome.values, outcome.error, *((outcome.input_tokens, outcome.output_tokens, outcome.cost) if usage else ()))
            for name, value in zip(names, row):
                columns[name].append(value)
        return result_like(self.rows, columns)


class _Unshown:
    """A row's answer is not shown as it streams: it lands in the result."""

    def feed(self, text: str) -> None:
        pass

    def feed_thinking(self, text: str) -> None:
        pass

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        pass

    def finish(self, text: str) -> None:
        pass

    def waiting(self, waited: float) -> None:
        """The job's progress bar counts the rows waiting for the rate limit."""


def _counted_or_none(count_tokens: Callable[[Any], int] | None, request: Any) -> int | None:
    if count_tokens is None:
        return None
    try:
        return count_tokens(request)
    except ClaudeError:
        return None


def _scaled(samples: list[CostRange], count: int) -> CostRange:
    """The sample's average request, ``count`` times."""
    from .spending import CostRange

    def mean_times(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return sum(known) / len(known) * count if len(known) == len(values) else None

    each = len(samples)
    return CostRange(
        samples[0].model,
        round(sum(s.input_tokens for s in samples) / each * count),
        round(sum(s.cacheable_tokens for s in samples) / each * count),
        round(sum(s.max_output for s in samples) / each * count),
        mean_times([s.least for s in samples]),
        mean_times([s.most for s in samples]),
    )
