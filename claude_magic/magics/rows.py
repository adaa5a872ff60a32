"""One prompt over many rows, from a notebook: ``claude_magic.map(template, rows, ...)`` and
``%%claude --each ROWS``, with ``claude_magic.batches()``, ``batch_result(id)`` and ``cancel_batch(id)``.

This is where a job over rows (:mod:`claude_magic.core.rows`) meets the notebook: the template's
``{placeholders}`` are checked against the rows' columns and the notebook's variables before
anything is sent, and filled per row with the magic's rules (:mod:`claude_magic.attach.interpolate`:
other braces stay as written); columns named to be attached become each row's attachments; the
options are the magic's (settings, then what the call says); the job's cost is estimated and, above
``confirm_above_usd``, confirmed; the progress bar is drawn; failures are one line.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..api.errors import ClaudeError
from ..ui.wording import ClaudeMagicError, explain, note, warn

if TYPE_CHECKING:
    from ..core.batch_jobs import BatchRecords, BatchRun
    from ..core.rows import RowsJob
    from ..core.schemas import AnswerSchema
    from ..core.session import AskOptions
    from ..core.spending import CostRange
    from ..core.table import Rows
    from .settings import ClaudeSettings


def map_rows(
    magics: ClaudeSettings,
    template: str,
    rows: Any,
    *,
    schema: Any = None,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    effort: str | None = None,
    thinking: bool | int = False,
    tools: Iterable[Any] = (),
    attach: Iterable[str] = (),
    shared: list[dict[str, Any]] | None = None,
    item: str = "item",
    batch: bool | None = None,
    concurrency: int | None = None,
    usage: bool = False,
    fresh: bool = False,
    yes: bool = False,
    send_anyway: str = "pass yes=True",
    estimate_only: bool = False,
) -> Any:
    """The job behind :func:`claude_magic.map` and ``--each`` (see there); ``shared``: blocks every
    row's question starts with (the cell's own attachments)."""
    try:
        return _map_rows(**locals())
    except ClaudeError as error:
        raise ClaudeMagicError(explain(error, magics.client_settings())) from None
    except KeyboardInterrupt:  # while planning or submitting: asking row by row and waiting take it themselves
        raise ClaudeMagicError("interrupted before the rows were asked; nothing more was sent") from None


EACH_ALONE = {
    "--compare": "compare",
    "--sweep": "sweep",
    "--samples": "samples",
    "--dry-run": "dry_run",
    "--count": "count",
    "--code": "code",
    "--new": "new",
    "--template": "template",
}
"""Options of a single question that ``--each`` can't take (option: its attribute)."""


def _map_rows(
    magics: ClaudeSettings,
    template: str,
    rows: Any,
    *,
    schema: Any,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    effort: str | None,
    thinking: bool | int,
    tools: Iterable[Any],
    attach: Iterable[str],
    shared: list[dict[str, Any]] | None,
    item: str,
    batch: bool | None,
    concurrency: int | None,
    usage: bool,
    fresh: bool,
    yes: bool,
    send_anyway: str,
    estimate_only: bool,
) -> Any:
    from ..core.rows import RowsJob
    from ..core.schemas import answer_schema
    from ..core.table import rows_of

    table = rows_of(rows, item)
    attached = list(attach)
    _check_placeholders(magics, template, table, attached)
    checked = answer_schema(schema) if schema is not None else None
    options = _options(magics, model, system, max_tokens, effort, thinking, tools, checked, fresh)
    job = RowsJob(
        magics.session,
        magics.client_settings(),
        options,
        table,
        _question_maker(magics, template, table, attached, shared or []),
        checked,
        describe_error=lambda error: _one_line(error, magics),
        concurrency=concurrency or magics.rows_concurrency,
        limiter=magics.rows_limiter(),
    )
    job.plan()
    run = _batch_run(magics, job)
    as_batch = batch if batch is not None else _batch_by_default(magics, job, run)
    if estimate_only:
        return _show_estimate(magics, job, run.uncovered, batch=as_batch)
    if not job.pending and job.progress.from_cache:
        note(f"{_all(job.progress.from_cache, len(table))} rows were answered before (the answer cache): nothing was sent")
    _answer_pending(magics, run, template, as_batch=as_batch, yes=yes, send_anyway=send_anyway)
    if job.progress.failed:
        warn(f"{job.progress.failed:,} of {len(table):,} rows have no answer: the error column says why")
    return job.result(usage=usage)


# --- what is asked --------------------------------------------------------------------------------


def _check_placeholders(magics: ClaudeSettings, template: str, table: Rows, attach: list[str]) -> None:
    """Every ``{placeholder}`` names a column or a variable, every attached name a column: else nothing is sent."""
    from ..attach.interpolate import references, root_name

    if not template.strip():
        raise UsageError("nothing to ask: the template is empty")
    known = set(table.names) | set(_variables(magics))
    columns = ", ".join(table.names) or "none: the rows are empty"
    for reference in references(template):
        if root_name(reference) not in known:
            raise ClaudeMagicError(f"{{{reference}}} names no column of the rows (their columns: {columns}) and no variable; nothing was sent")
    for name in attach:
        if name not in table.names:
            raise ClaudeMagicError(f"attach={name!r} names no column of the rows (their columns: {columns}); nothing was sent")


def _question_maker(magics: ClaudeSettings, template: str, table: Rows, attach: list[str], shared: list[dict[str, Any]]) -> Any:
    """Row position → its question: the shared blocks, the row's attachments, the filled template."""
    from ..attach.interpolate import RenderError, interpolate
    from ..attach.registry import AttachmentError
    from ..core.rows import RowQuestionError

    variables = _variables(magics)

    def question(position: int) -> list[dict[str, Any]]:
        values = table.row(position)
        try:
            filled = interpolate(template, ChainMap(values, variables))
            attached = [block for name in attach if not _missing(values[name]) for block in magics.attach(f"`{name}`", values[name]).blocks()]
        except (RenderError, AttachmentError) as error:
            raise RowQuestionError(str(error)) from None
        if filled.unresolved:
            raise RowQuestionError(f"this row could not fill {', '.join(filled.unresolved)}")
        return [*shared, *attached, {"type": "text", "text": filled.text.strip() or "(empty)"}]

    return question


def _all(count: int, total: int) -> str:
    return f"all {total:,}" if count == total else f"{count:,} of {total:,}"


def _variables(magics: ClaudeSettings) -> dict[str, Any]:
    """What placeholders that name no column are filled from: the notebook's variables (none in a script)."""
    return magics.namespace if magics.shell is not None else {}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _options(
    magics: ClaudeSettings,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    effort: str | None,
    thinking: bool | int,
    tools: Iterable[Any],
    schema: AnswerSchema | None,
    fresh: bool,
) -> AskOptions:
    """A one-off question's options: the call's, else the magic's settings; the schema as the model takes it."""
    from ..api.settings import as_effort
    from ..core.session import AskOptions, thinking_request
    from ..core.tools import Tool, tool_from

    chosen = model or magics.model
    most = max_tokens or magics.max_tokens
    settings = magics.client_settings()
    info = magics.session.model_info(chosen, settings) if schema is not None or thinking is not False else None
    thought = None if thinking is False else thinking_request(chosen, info, 0 if thinking is True else int(thinking), most)
    functions = tuple(f if isinstance(f, Tool) else tool_from(getattr(f, "__name__", repr(f)), f) for f in tools)
    answer_tool = schema is not None and not _takes_structured_outputs(info)
    if answer_tool and (thought or functions):
        why = "thinking" if thought else "tools"
        raise ClaudeMagicError(
            f"{chosen} does not take structured outputs (as /v1/models says), so the schema is asked for as a tool it must "
            f"call, and the API forbids {why} with a forced tool: leave {why} out, or pick a model that takes structured outputs"
        )
    return AskOptions(
        model=chosen,
        max_tokens=most,
        system=system if system is not None else magics.system,
        temperature=magics.temperature,
        effort=as_effort(effort or magics.effort),
        use_history=False,
        cached=True,
        fresh=fresh,
        thinking=thought,
        tools=functions,
        max_tool_rounds=magics.max_tool_rounds,
        answer_schema=schema.for_api if schema is not None else None,
        answer_tool=answer_tool,
    )


def _takes_structured_outputs(info: Any) -> bool:
    capabilities = ((info.model_extra or {}).get("capabilities") or {}) if info is not None else {}
    return bool(capabilities.get("structured_outputs", {}).get("supported"))


def _one_line(error: BaseException, magics: ClaudeSettings) -> str:
    return explain(error, magics.client_settings()) if isinstance(error, ClaudeError) else str(error)


# --- what it may cost -------------------------------------------------------------------------------


def _approve(magics: ClaudeSettings, job: RowsJob, keys: list[str], *, batch: bool, yes: bool, send_anyway: str) -> None:
    """Refuse (one line, nothing sent) what the notebook's budget or the user does not allow."""
    from ..core.pricing import format_cost
    from ..core.spending import Refused

    if magics.budget_usd is None and (yes or magics.confirm_above_usd is None):
        return  # nothing to hold the estimate against: no request to count tokens with
    client = magics.session.client(magics.client_settings())
    worst = job.estimate(client.count_tokens, keys=keys, batch=batch)
    how = "as a Message Batch, at half price" if batch else "row by row"
    what = (
        f"this job of {job.rows_of(keys):,} rows, asked {how}, could cost up to {format_cost(worst.most)} "
        f"({worst.max_output // max(len(keys), 1):,} tokens of output a row at most; {_input_words(worst)})"
    )
    try:
        magics.within_caps(worst, what, yes=yes, send_anyway=send_anyway)
    except Refused as refused:
        raise ClaudeMagicError(str(refused)) from None


def _input_words(worst: CostRange) -> str:
    return f"about {worst.input_tokens:,} input tokens in all"


def _show_estimate(magics: ClaudeSettings, job: RowsJob, keys: list[str], *, batch: bool) -> None:
    """What sending ``keys`` could cost (a sample counted by the server, scaled); nothing is asked."""
    from . import dry_run

    client = magics.session.client(magics.client_settings())
    worst = job.estimate(client.count_tokens, keys=keys, batch=batch)
    rows = job.rows_of(keys)
    lines = [
        f"{job.options.model} · {rows:,} of {len(job.rows):,} rows to send ({len(job.rows) - rows:,} answered before or in a batch) · nothing was sent",
        f"Input: about {worst.input_tokens:,} tokens in all (a sample of rows counted by the server where it answers, scaled to all of them).",
        f"Output: up to {worst.max_output:,} tokens ({job.options.max_tokens:,} a row: max_tokens, thinking included).",
        f"Cost: {worst.text}{' as a Message Batch (half price)' if batch else ', row by row'}.",
    ]
    dry_run.show_estimate(magics, lines, worst, doing="running it")


# --- asking ---------------------------------------------------------------------------------------


def _answer_pending(magics: ClaudeSettings, run: BatchRun, template: str, *, as_batch: bool, yes: bool, send_anyway: str) -> None:
    """The rows not answered yet: those in earlier batches read from them, the others sent in new
    batches (``as_batch``) or row by row; what they may cost approved before anything is sent."""
    job = run.job
    if as_batch and run.uncovered:
        _approve(magics, job, run.uncovered, batch=True, yes=yes, send_anyway=send_anyway)
    if run.covering:
        note(f"{job.rows_of(set().union(*run.covering.values())):,} of these rows are in {', '.join(run.covering)}, submitted earlier: waiting for it")
    if as_batch and run.uncovered:
        _submit(run, template)
    if run.covering and not _wait_and_collect(magics, run):
        return  # Ctrl-C: stop here, the batches go on
    if job.pending and not as_batch:
        _row_by_row(magics, job, yes=yes, send_anyway=send_anyway)


def _row_by_row(magics: ClaudeSettings, job: RowsJob, *, yes: bool, send_anyway: str) -> None:
    from ..ui.progress import ProgressBar

    _approve(magics, job, list(job.pending), batch=False, yes=yes, send_anyway=send_anyway)
    bar = ProgressBar(magics.in_notebook, magics.live_updates)
    finished = job.ask_all(bar)
    bar.close(job.progress)
    if not finished and job.pending:
        left = job.pending_rows
        note(f"interrupted: {job.progress.answered:,} of {job.progress.total:,} rows answered; run it again to send only the {left:,} not yet answered")


def _batch_run(magics: ClaudeSettings, job: RowsJob) -> BatchRun:
    """The job's rows as batches: those of this notebook's batches that hold some of its rows (row
    by row or not, a row is never sent twice), and new ones when the job goes as a batch."""
    from ..api.batches import Batches
    from ..core.batch_jobs import BatchRecords, BatchRun

    run = BatchRun(job, BatchRecords.of(magics._notebook_path()), Batches(magics.session.client(magics.client_settings())))
    run.cover()
    return run


def _batch_by_default(magics: ClaudeSettings, job: RowsJob, run: BatchRun) -> bool:
    threshold = magics.batch_above_rows
    return threshold is not None and job.rows_of(run.uncovered) > threshold


def _submit(run: BatchRun, template: str) -> None:
    """New batches for the rows no batch holds yet."""
    job = run.job
    rows = job.rows_of(run.uncovered)
    submitted = run.submit(" ".join(template.split())[:80], _job_rows(job))
    note(f"submitted {', '.join(submitted)} ({rows:,} rows); if the kernel restarts, run this again, or claude_magic.batch_result('{submitted[0]}')")


def _wait_and_collect(magics: ClaudeSettings, run: BatchRun) -> bool:
    """Wait for the run's batches and read their results; False when Ctrl-C stopped the waiting."""
    from ..ui.progress import ProgressBar

    bar = ProgressBar(magics.in_notebook, magics.live_updates)
    ended = run.wait(bar, magics.batch_poll_seconds)
    run.collect(bar)
    waiting = run.not_ended()
    for batch_id in waiting:
        run.leave_waiting(batch_id, f"in {batch_id}, which has not ended: run this again, or claude_magic.batch_result('{batch_id}'), to get it")
    bar.close(run.job.progress)
    if waiting and not ended:
        first = waiting[0]
        note(f"stopped waiting; {', '.join(waiting)} goes on: run this again, or claude_magic.batch_result('{first}'), to get its rows (claude_magic.cancel_batch('{first}') cancels it)")
    return ended


def _job_rows(job: RowsJob) -> dict[str, Any]:
    """What :func:`batch_result` needs to rebuild the job's result: each row's key, the index, the schema."""
    rows = job.rows
    index = rows.index
    return {
        "keys": job.keys,
        "row_errors": {str(position): why for position, why in job.row_errors.items()},
        "kind": rows.kind,
        "index": [_plain(label) for label in index] if index is not None else None,
        "index_dtype": str(getattr(index, "dtype", "")),
        "schema": job.options.answer_schema,
        "answer_tool": job.options.answer_tool,
        "max_tokens": job.options.max_tokens,
        "model": job.options.model,
    }


def _plain(label: Any) -> Any:
    """An index label as JSON keeps it (a timestamp as its ISO text)."""
    if label is None or isinstance(label, (str, int, float, bool)):
        return label
    return label.isoformat() if hasattr(label, "isoformat") else str(label)


# --- batches after the fact -----------------------------------------------------------------------


def batch_result(magics: ClaudeSettings, batch_id: str, *, schema: Any = None, usage: bool = False) -> Any:
    """The result of the job a batch of this notebook belongs to, waiting for its batches to end."""
    try:
        return _batch_result(magics, batch_id, schema, usage)
    except ClaudeError as error:
        raise ClaudeMagicError(explain(error, magics.client_settings())) from None


def _batch_result(magics: ClaudeSettings, batch_id: str, schema: Any, usage: bool) -> Any:
    from ..api.batches import Batches
    from ..core.batch_jobs import BatchRecords, BatchRun
    from ..core.rows import RowsJob
    from ..core.schemas import answer_schema
    from ..core.session import AskOptions

    records = BatchRecords.of(magics._notebook_path())
    recorded = records.find(batch_id)
    if recorded is None:
        raise ClaudeMagicError(f"{batch_id} is not one of this notebook's batches (claude_magic.batches() lists them)")
    saved = records.job(recorded.job)
    checked = answer_schema(schema if schema is not None else saved["schema"]) if (schema is not None or saved.get("schema")) else None
    options = AskOptions(
        model=saved["model"], max_tokens=saved["max_tokens"], use_history=False, answer_schema=checked.for_api if checked else None, answer_tool=saved["answer_tool"]
    )
    job = RowsJob(magics.session, magics.client_settings(), options, _saved_rows(saved), _no_questions, checked)
    job.restore(saved["keys"], {int(position): why for position, why in saved["row_errors"].items()})
    run = BatchRun(job, records, Batches(magics.session.client(magics.client_settings())))
    run.cover(only=[b.id for b in records.batches() if b.job == recorded.job])
    _wait_and_collect(magics, run)
    return job.result(usage=usage)


def _no_questions(position: int) -> list[dict[str, Any]]:
    raise AssertionError("a restored job asks nothing")


def _saved_rows(saved: Mapping[str, Any]) -> Rows:
    from ..core.table import Rows

    keys = saved["keys"]
    index = saved.get("index")
    if saved["kind"] == "pandas" and index is not None:
        import pandas as pd  # type: ignore[import-untyped]

        index = pd.to_datetime(index) if str(saved.get("index_dtype", "")).startswith("datetime64") else pd.Index(index)
    return Rows(saved["kind"], {}, len(keys), index)


def list_batches(magics: ClaudeSettings) -> BatchListing:
    """This notebook's batches, newest first, each with its state as the API tells it now."""
    from ..api.batches import Batches
    from ..core.batch_jobs import BatchRecords

    records = BatchRecords.of(magics._notebook_path())
    batches = Batches(magics.session.client(magics.client_settings()))
    listed = []
    for recorded in records.batches():
        try:
            state = batches.retrieve(recorded.id)
            counts = state.request_counts
            status = state.processing_status + (f" ({counts.succeeded:,} succeeded, {counts.errored:,} errored)" if state.ended else "")
        except ClaudeError as error:
            status = f"unknown ({_one_line(error, magics)})"
        listed.append({"id": recorded.id, "submitted": _when(recorded.created), "requests": recorded.requests, "model": recorded.model, "status": status, "prompt": recorded.what})
    return BatchListing(listed, records)


def _when(seconds: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


class BatchListing(list[dict[str, Any]]):
    """This notebook's batches: a list of dicts that prints as a table."""

    def __init__(self, batches: list[dict[str, Any]], records: BatchRecords) -> None:
        super().__init__(batches)
        self.records = records

    def __repr__(self) -> str:
        if not self:
            return f"no batches submitted from this notebook (kept in {self.records.folder})"
        lines = [f"{b['id']}  {b['submitted']}  {b['requests']:>7,} requests  {b['model']}  {b['status']}\n    {b['prompt']}" for b in self]
        return "\n".join(lines)


def cancel_batch(magics: ClaudeSettings, batch_id: str) -> None:
    from ..api.batches import Batches

    try:
        state = Batches(magics.session.client(magics.client_settings())).cancel(batch_id)
    except ClaudeError as error:
        raise ClaudeMagicError(explain(error, magics.client_settings())) from None
    note(f"{batch_id} is {state.processing_status}: requests not yet processed will not be answered; claude_magic.batch_result('{batch_id}') collects what was")
