"""The turn engine: one question's way from the conversation to a recorded answer.

Every way of asking goes through a :class:`Turn`: the ``%%claude`` magic, the chat panel and
each ``--compare`` column. The turn decides what to send (the history that fits, prompt-cache
marks, the steps of earlier tool rounds), answers from the answer cache when it may, applies
each stream event (text and thinking to the renderer, the first token's time), decides after
each round whether tools run, tallies every round's usage and records the exchange, complete
or cut off. It does no network I/O of its own: a driver opens each round's stream and feeds
the turn its events, the shape of h11's protocol engine. :func:`ask` is the driver for the
synchronous client (the magic), :func:`ask_async` for the event loop (the panel, compare);
each drives the same turn in a dozen lines, so a fix to the turn is a fix for every caller.

A turn asks one thing of its driver besides streams: the model listing, when the context
budget had to assume a context window (:attr:`Turn.wants_models`). Before the first request
goes (and after a saved or cached answer, which costs nothing), the caller's ``approve`` may refuse it:
nothing is then sent or recorded.

Every answer ends with its :class:`~.provenance.Provenance` (the request as sent, the message
as received), given to a renderer that keeps it with the final display
(:class:`ShowsProvenance`), and kept with the exchange. An answer saved in the notebook for
this exact request (replay, :mod:`.replay`) or in the answer cache is shown and recorded as
if it had just arrived, and no request is made.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..api.errors import ClaudeError
from .conversation import CellRun, Exchange
from .provenance import Attached, Provenance, Round, Shaping, utc_time
from .session import listed_or_none

if TYPE_CHECKING:
    from ..api.accumulate import MessageAccumulator
    from ..api.client import AsyncClient, Client
    from ..api.protocol import Message, MessageRequest, ModelInfo, StreamEvent
    from ..api.settings import ClientSettings
    from .server_tools import ServerCall
    from .session import AskOptions, ClaudeSession, Prepared
    from .tools import ToolRun

ShowToolRun = Callable[["ToolRun"], None]
ShowServerCall = Callable[["ServerCall"], None]
"""Shows a call the API ran itself (a web search or fetch, an MCP tool) with its result."""
Approve = Callable[["MessageRequest"], None]
"""Looks at the first request a turn would send and raises to keep it from being sent (a cost
cap, a declined confirmation: see :mod:`claude_magic.core.spending`)."""


class Renderer(Protocol):
    """Where an answer streams to: the notebook, the terminal, the chat panel, a compare column."""

    def feed(self, text: str) -> None:
        """New answer text; cheap, called for every delta."""

    def feed_thinking(self, text: str) -> None:
        """New thinking text (shown collapsed above the answer, where the renderer can)."""

    def feed_citation(self, citation: dict[str, Any], at: int) -> None:
        """A citation for the answer's text before character ``at`` (the end of the cited text):
        a numbered marker there, its source under the answer, where the renderer can."""

    def finish(self, text: str) -> None:
        """The answer is over (complete or not): show ``text``, the whole of it."""

    def waiting(self, waited: float) -> None:
        """The Jupyter server holds the request back for the rate limit it shares between
        kernels, ``waited`` seconds so far (said about once a second, before any text)."""


@runtime_checkable
class ShowsProvenance(Protocol):
    """A renderer whose final display keeps the answer's provenance (a notebook's output);
    the engine calls this instead of :meth:`Renderer.finish` at the end of an answer."""

    def finish_with(self, text: str, provenance: Provenance) -> None:
        """:meth:`Renderer.finish`, the display keeping ``provenance``."""


class Opened(Protocol):
    """A round's stream, as the turn sees it: the answer so far and what names the request."""

    accumulator: MessageAccumulator
    request_id: str | None
    request_sha256: str | None


@dataclass
class Answer:
    text: str
    model: str
    usage: dict[str, Any] = field(default_factory=dict)
    time_to_first_token: float | None = None
    total_time: float = 0.0
    stop_reason: str | None = None
    complete: bool = True
    turns_left_out: int = 0
    """Earlier turns not sent, to fit the context budget."""
    images_left_out: int = 0
    cached_at: float | None = None
    """When the answer came from the answer cache: the time it was first received."""
    calls_not_run: list[str] = field(default_factory=list)
    """Tool calls the answer ended with that were not run (round limit, no tools, interrupt)."""
    content: list[dict[str, Any]] = field(default_factory=list)
    """The answer's blocks as the conversation keeps them (see :func:`sendable_answer`)."""
    output_estimated: bool = False
    """The output tokens in ``usage`` are estimated from what arrived (the answer was cut off)."""
    web_searches: int = 0
    """Web searches the API ran for the answer, every round of it (``usage.server_tool_use``)."""
    web_fetches: int = 0
    provenance: Provenance | None = None
    """What produced the answer (the original's, for one replayed from the notebook)."""
    message: Message | None = None
    """The last round's message as the API sent it, every block kept (a forced tool call too)."""

    @property
    def replayed(self) -> bool:
        """The answer came from the notebook's saved outputs; nothing was sent."""
        return self.provenance is not None and self.provenance.replayed_at is not None


class AnswerCutOff(ClaudeError):
    """The answer stopped before its end (an error, an interrupt, a cancel); ``answer`` is what
    arrived, already shown and recorded."""

    def __init__(self, answer: Answer, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.answer = answer
        self.cause = cause


@dataclass
class Turn:
    """One question on its way. Drivers call, in order: :meth:`cached` (an answer from the
    answer cache ends the turn), then per round :meth:`request`, :meth:`stream_started`,
    :meth:`show` for each event, :meth:`round_ended`; :meth:`run_tools` between rounds when
    there are calls to run (none: a paused answer goes on); :meth:`cut_off` when a round breaks.

    A round that pauses (``pause_turn``: the API ran server tools for long) is continued: its
    blocks are sent back as they came, as the assistant's message the next request ends with,
    at most ``max_tool_rounds`` times; the recorded answer is the rounds' blocks in order. A
    server tool's result ends the display of the text before it: the call shows under that
    text (``show_server_call``), and what follows shows under the call."""

    session: ClaudeSession
    question: list[dict[str, Any]]
    options: AskOptions
    settings: ClientSettings
    open_renderer: Callable[[], Renderer]
    cell: CellRun | None = None
    show_tool_run: ShowToolRun | None = None
    record: bool = True
    """False for an answer that joins the conversation only if chosen (``--compare``)."""
    approve: Approve | None = None
    attachments: tuple[Attached, ...] = ()
    """What the question carries attached, for the answer's provenance."""
    show_server_call: ShowServerCall | None = None

    steps: list[dict[str, Any]] = field(default_factory=list)
    """Tool rounds so far: assistant ``tool_use`` and user ``tool_result`` messages."""
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    _paused: list[dict[str, Any]] = field(default_factory=list)
    """The blocks of paused rounds (``pause_turn``), sent back for the answer to go on."""
    _continuations: int = 0
    _server_uses: Counter[str] = field(default_factory=Counter)
    """``usage.server_tool_use`` of every round so far, added up."""
    _text_start: int = 0
    """Where in the round's text the current renderer's part begins (after a server tool's result)."""
    _reopen: bool = False
    """The current renderer was finished at a server tool's result: what follows gets a new one."""
    _prepared: Prepared | None = None
    _renderer: Renderer | None = None
    _accumulator: MessageAccumulator | None = None
    _calls_not_run_because: str = "no tools were offered for it"
    _asked: MessageRequest | None = None
    """The question's request (the first round's)."""
    _sent: list[tuple[str | None, str | None]] = field(default_factory=list)
    """Each round's request as sent: the SHA-256 of its body and its request-id."""
    _earlier_usage: list[dict[str, Any]] = field(default_factory=list)
    """The usage of the rounds before the last (tool rounds)."""

    # --- what to send -----------------------------------------------------------------------

    def request(self) -> MessageRequest:
        """The next round's request (the first round's history is cut where the budget says)."""
        paused = [{"role": "assistant", "content": self._paused}] if self._paused else []
        self._prepared = self.session.prepare(self.question, self.options, self.cell, [*self.steps, *paused])
        return self._prepared.request

    @property
    def wants_models(self) -> bool:
        """The budget cut the history against an assumed context window: the driver should
        fetch the model listing (:meth:`learn_models`) and ask for the request again."""
        return self._prepared is not None and self._prepared.unsure and not self.session.models_known

    def learn_models(self, models: list[ModelInfo] | None) -> None:
        self.session.learn_models(models)

    def cached(self) -> Answer | None:
        """The answer to this exact request saved in the notebook (with replay on) or in the
        answer cache, shown and recorded; None when neither may answer it, or holds nothing.
        (A question with tools is always sent: its functions must run.)"""
        if self.options.tools or self.options.fresh:
            return None
        if self.options.replay and (saved := self.session.saved_answer(self._request_sha256())) is not None:
            return self._answer_from(saved.message(), replayed=saved)
        key = self._cache_key()
        if key is None or (hit := self.session.answer_cache.get(key)) is None:
            return None
        return self._answer_from(hit.message, cached_at=hit.saved_at)

    def _answer_from(self, message: dict[str, Any], *, cached_at: float | None = None, replayed: Provenance | None = None) -> Answer:
        """An answer that did not stream this time (saved in the notebook, or cached), shown and
        recorded as the streamed one was."""
        from ..api.accumulate import MessageAccumulator, events_of

        assert self._prepared is not None, "request() comes first"
        self._asked = self._prepared.request
        self._renderer = self.open_renderer()
        self._accumulator = MessageAccumulator()
        for event in events_of(message):  # shown as it streamed: thinking, citations, server calls
            self._accumulator.add(event)
            self.show(event)
        self.first_token = None  # nothing streamed this time
        return self._conclude(cached_at=cached_at, replayed=replayed)

    def _body(self) -> dict[str, Any]:
        """This round's request body, as the client will send it."""
        assert self._prepared is not None, "request() comes first"
        return self.session.client(self.settings).message_body(self._prepared.request, stream=True)

    def _request_sha256(self) -> str:
        from ..api.client import request_sha256

        return request_sha256(self._body())

    def _cache_key(self) -> str | None:
        if not self.options.cached or self.options.tools or self.options.server_tools or self.options.mcp_servers:
            return None
        from .answer_cache import request_key

        return request_key(self._body(), self.settings.api_version, self.settings.base_url)

    # --- a round streaming ------------------------------------------------------------------

    def stream_started(self, stream: Opened) -> None:
        """A round's stream opened: its answer gets a renderer of its own."""
        assert self._prepared is not None, "request() comes first"
        self.session.note_sent(self._prepared, self.options)
        if not self._sent:
            self._asked = self._prepared.request
        self._sent.append((stream.request_sha256, stream.request_id))
        self._accumulator = stream.accumulator
        self._renderer = self.open_renderer()
        self._text_start, self._reopen = 0, False

    def show(self, event: StreamEvent) -> None:
        """Show what ``event`` adds: thinking, text, and when a block ends, a cited text's
        citations or a server tool's call and result."""
        from ..api.client import text_of, thinking_of
        from ..api.protocol import ContentBlockStopEvent, RateLimitWaitEvent

        if isinstance(event, RateLimitWaitEvent):
            if renderer := self._showing():
                renderer.waiting(event.waited)
        elif thinking := thinking_of(event):
            if renderer := self._showing():
                renderer.feed_thinking(thinking)
        elif text := text_of(event):
            if self.first_token is None:
                self.first_token = time.monotonic() - self.started
            if renderer := self._showing():
                renderer.feed(text)
        elif isinstance(event, ContentBlockStopEvent) and self._accumulator is not None:
            self._block_ended(self._accumulator.block(event.index) or {})

    def _showing(self) -> Renderer | None:
        """The renderer for what arrives now (a new one after a server tool's result)."""
        if self._renderer is None and self._reopen:
            self._renderer, self._reopen = self.open_renderer(), False
        return self._renderer

    def _block_ended(self, block: dict[str, Any]) -> None:
        from .server_tools import RESULT_TYPES

        assert self._accumulator is not None
        if block.get("type") == "text" and block.get("citations") and (renderer := self._showing()):
            at = len(self._accumulator.text) - self._text_start
            for citation in block["citations"]:
                renderer.feed_citation(citation, at)
        elif block.get("type") in RESULT_TYPES:
            self._show_server_call(block)

    def _show_server_call(self, result: dict[str, Any]) -> None:
        """The text so far stays above the call; the call and its result show; the text that
        follows shows under them."""
        from .server_tools import CALL_TYPES, ServerCall

        assert self._accumulator is not None
        content = self._accumulator.content()
        call = next((b for b in content if b.get("type") in CALL_TYPES and b.get("id") == result.get("tool_use_id")), {})
        text = self._accumulator.text
        self._finish_showing(text)
        self._text_start, self._reopen = len(text), True
        if self.show_server_call is not None:
            self.show_server_call(ServerCall(call, result))

    def round_ended(self) -> list[dict[str, Any]] | None:
        """The tool calls to run before the next round, or None when the answer is complete
        (calls that may not run become a note in the recorded answer)."""
        accumulator = self._accumulator
        assert accumulator is not None, "stream_started() comes first"
        if accumulator.stop_reason == "pause_turn" and accumulator.complete and self._continuations < self.options.max_tool_rounds:
            self._continuations += 1
            self._finish_showing(accumulator.text)
            self._tally(accumulator.usage, separately=True)
            self._paused += accumulator.content()
            return []
        if accumulator.stop_reason != "tool_use":
            return None
        if not self.options.tools:
            return None
        if len(self.steps) >= 2 * self.options.max_tool_rounds:
            self._calls_not_run_because = f"the limit of {self.options.max_tool_rounds} tool rounds was reached"
            return None
        self._finish_showing(accumulator.text)
        return [block for block in accumulator.content() if block.get("type") == "tool_use"]

    def run_tools(self, calls: list[dict[str, Any]]) -> None:
        """Run the round's calls (only the user's named functions can run), show each, and
        make their results the next round's question; an interrupt ends the turn."""
        from .tools import run

        assert self._accumulator is not None
        by_name = {tool.name: tool for tool in self.options.tools}
        runs = []
        try:
            for call in calls:
                runs.append(tool_run := run(by_name, call))
                if self.show_tool_run is not None:
                    self.show_tool_run(tool_run)
        except KeyboardInterrupt as cause:
            self._calls_not_run_because = "interrupted by the user"
            raise self.cut_off(cause) from None
        self._tally(self._accumulator.usage, separately=True)
        self._earlier_usage.append(self._accumulator.usage)
        self.steps += [
            {"role": "assistant", "content": [*self._paused, *self._accumulator.content()]},
            {"role": "user", "content": [r.result_block() for r in runs]},
        ]
        self._paused = []

    # --- the end ----------------------------------------------------------------------------

    def finish(self) -> Answer:
        """The answer is complete: show it whole, record it, keep it in the answer cache."""
        answer = self._conclude()
        key = self._cache_key()
        if key is not None and answer.complete and self._accumulator is not None:
            self.session.answer_cache.put(key, self._accumulator.message().to_wire())
        return answer

    def cut_off(self, cause: BaseException) -> AnswerCutOff:
        """The round broke (an error, Ctrl-C, a cancel): what arrived is shown and recorded."""
        return AnswerCutOff(self._conclude(), cause)

    def _conclude(self, cached_at: float | None = None, replayed: Provenance | None = None) -> Answer:
        from ..api.accumulate import MessageAccumulator

        accumulator = self._accumulator or MessageAccumulator()
        message = accumulator.message()
        content, calls_not_run = sendable_answer(accumulator, self._calls_not_run_because)
        paused_text = "".join(b.get("text", "") for b in self._paused if b.get("type") == "text")
        fitted = self._prepared.fitted if self._prepared is not None else None
        usage, estimated = counted_output(accumulator)
        if cached_at is None and replayed is None:  # an answer cached or replayed cost nothing this time
            self._tally(usage, separately=not self.record or not self.options.use_history, model=message.model or self.options.model)
        answer = Answer(
            text=paused_text + message.text,
            model=message.model or self.options.model,
            usage=usage,
            output_estimated=estimated,
            content=[*self._paused, *content],
            web_searches=self._server_uses["web_search_requests"],
            web_fetches=self._server_uses["web_fetch_requests"],
            time_to_first_token=self.first_token,
            total_time=time.monotonic() - self.started,
            stop_reason=message.stop_reason,
            complete=accumulator.complete,
            turns_left_out=fitted.turns_left_out if fitted else 0,
            images_left_out=fitted.images_left_out if fitted else 0,
            cached_at=cached_at,
            calls_not_run=calls_not_run,
            message=message,
        )
        answer.provenance = replayed.replayed() if replayed is not None else self._provenance(answer, message.id or None, cached_at)
        self._finish_showing(message.text, answer.provenance)
        if self.record and self.options.use_history:
            self.session.conversation.record(self._exchange(answer))
        if self.record:
            self.session.last_provenance = answer.provenance
        return answer

    def _provenance(self, answer: Answer, message_id: str | None, cached_at: float | None) -> Provenance:
        """What produced ``answer``: the question's request as sent, and every round's usage."""
        from .pricing import cost

        assert self._asked is not None, "a request came first"
        (sha, request_id), *later = self._sent or [(self._request_sha256(), None)]
        usages = [*self._earlier_usage, answer.usage]
        costs = [cost(answer.model, usage) for usage in usages]
        return Provenance(
            model=answer.model,
            api_version=self.settings.api_version,
            request_sha256=sha,
            settings=Shaping.of(self._asked),
            usage=usages[0] if len(usages) == 1 else summed(usages),
            cost_usd=None if None in costs else round(sum(c for c in costs if c is not None), 10),
            stop_reason=answer.stop_reason,
            request_id=request_id,
            message_id=message_id,
            answered_at=utc_time(cached_at),
            complete=answer.complete,
            content=tuple(answer.content),
            attachments=self.attachments,
            tool_rounds=tuple(Round(later_sha, later_id) for later_sha, later_id in later),
            cached_at=utc_time() if cached_at is not None else None,
        )

    def _exchange(self, answer: Answer) -> Exchange:
        return Exchange(
            question=self.question,
            answer=answer.content,
            cell=self.cell or CellRun(),
            model=answer.model,
            usage=answer.usage,
            complete=answer.complete,
            steps=list(self.steps),
            provenance=answer.provenance.to_json(with_content=False) if answer.provenance else None,
            billed_separately=answer.replayed,
        )

    def _tally(self, usage: dict[str, Any], *, separately: bool, model: str | None = None) -> None:
        """Count a request's usage in the session; ``separately``: in the notebook's log too,
        for a request whose usage no recorded exchange carries. Its server tools' uses add up."""
        self._server_uses.update({k: v for k, v in (usage.get("server_tool_use") or {}).items() if isinstance(v, int)})
        self.session.tally(model or self.options.model, usage, log=separately)

    def _finish_showing(self, text: str, provenance: Provenance | None = None) -> None:
        """The current renderer's part of the round's ``text`` is complete: show all of it (what
        comes next gets its own renderer); the answer's last display keeps its provenance, where
        the renderer can."""
        if self._renderer is not None:
            if provenance is not None and isinstance(self._renderer, ShowsProvenance):
                self._renderer.finish_with(text[self._text_start :], provenance)
            else:
                self._renderer.finish(text[self._text_start :])
            self._renderer = None


def summed(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The token counts of several requests added up, kind by kind."""
    total: dict[str, Any] = {}
    for usage in usages:
        for kind, count in usage.items():
            if isinstance(count, int):
                total[kind] = total.get(kind, 0) + count
    return total


def counted_output(accumulator: MessageAccumulator) -> tuple[dict[str, Any], bool]:
    """The answer's usage, and whether its output tokens are an estimate: the API counts them
    in its last event, so an answer cut off before it reports only what ``message_start`` said
    (1). That is estimated from what arrived, as the context budget estimates (and billed so)."""
    usage = accumulator.usage
    if accumulator.complete:
        return usage, False
    from .budget import local_tokens

    arrived = local_tokens([{"role": "assistant", "content": accumulator.content()}])
    if arrived <= (usage.get("output_tokens") or 0):
        return usage, False
    return {**usage, "output_tokens": arrived}, True


def cited_offsets(content: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Each citation of an answer's text blocks, with the offset in the answer's text where its
    block ends (as :meth:`Turn.show` finds them while the answer streams)."""
    cited, offset = [], 0
    for block in content:
        if block.get("type") == "text":
            offset += len(block.get("text", ""))
            cited += [(citation, offset) for citation in block.get("citations") or []]
    return cited


def sendable_answer(accumulator: MessageAccumulator, why_not_run: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The answer's blocks as the conversation can send them back, and the tool calls left out.

    A cut-off answer keeps its text only (its unfinished thinking or tool blocks can't be sent
    back). A ``tool_use`` that was not run would make every later request invalid (the API wants
    its ``tool_result`` in the next message), so it is replaced by a note saying so.
    """
    content = accumulator.content()
    if not accumulator.complete:
        return [b for b in content if b.get("type") == "text" and b.get("text")], []
    calls = [_call_text(b) for b in content if b.get("type") == "tool_use"]
    if not calls:
        return content, []
    kept = [b for b in content if b.get("type") != "tool_use"]
    return [*kept, {"type": "text", "text": f"[Tool call {', '.join(calls)} not run: {why_not_run}.]"}], calls


def _call_text(block: dict[str, Any]) -> str:
    """``name(a=1, b='x')``: a tool call as it reads in a note."""
    arguments = block.get("input")
    listed = ", ".join(f"{k}={v!r}" for k, v in arguments.items()) if isinstance(arguments, dict) else ""
    return f"{block.get('name', '?')}({listed})"


# --- drivers ------------------------------------------------------------------------------------


def ask(
    session: ClaudeSession,
    question: list[dict[str, Any]],
    options: AskOptions,
    settings: ClientSettings,
    open_renderer: Callable[[], Renderer],
    cell: CellRun | None = None,
    show_tool_run: ShowToolRun | None = None,
    approve: Approve | None = None,
    attachments: tuple[Attached, ...] = (),
    show_server_call: ShowServerCall | None = None,
) -> Answer:
    """Send ``question`` with the history, stream the answer into the renderer ``open_renderer``
    makes once it starts, and record the exchange. Raises :class:`AnswerCutOff` (keeping what
    arrived) when the stream breaks or Ctrl-C stops it, and the client's errors when no answer
    started. ``attachments``: what the question carries, named in the answer's provenance."""
    turn = Turn(
        session, question, options, settings, open_renderer, cell, show_tool_run,
        approve=approve, attachments=attachments, show_server_call=show_server_call,
    )
    return _drive(turn, session.client(settings))


async def ask_async(
    session: ClaudeSession,
    question: list[dict[str, Any]],
    options: AskOptions,
    settings: ClientSettings,
    open_renderer: Callable[[], Renderer],
    cell: CellRun | None = None,
    show_tool_run: ShowToolRun | None = None,
    *,
    record: bool = True,
    approve: Approve | None = None,
    attachments: tuple[Attached, ...] = (),
    show_server_call: ShowServerCall | None = None,
    client: AsyncClient | None = None,
) -> Answer:
    """:func:`ask` on the event loop; cancelling the task stops the answer and keeps what
    arrived. ``record=False``: the answer joins the conversation only if kept (compare).
    ``client``: ask with this one (a job's own) rather than the session's for this loop."""
    turn = Turn(
        session, question, options, settings, open_renderer, cell, show_tool_run,
        record=record, approve=approve, attachments=attachments, show_server_call=show_server_call,
    )
    return await _drive_async(turn, client or session.async_client(settings))


def _drive(turn: Turn, client: Client) -> Answer:
    """Drive ``turn`` on the synchronous client: Ctrl-C stops at once, keeping what arrived."""
    request = turn.request()
    if turn.wants_models:
        turn.learn_models(listed_or_none(client.list_models))
        request = turn.request()
    if (hit := turn.cached()) is not None:
        return hit
    if turn.approve is not None:
        turn.approve(request)
    while True:
        with client.stream(request) as stream:
            turn.stream_started(stream)
            try:
                for event in stream:
                    turn.show(event)
            except (ClaudeError, KeyboardInterrupt) as cause:
                raise turn.cut_off(cause) from None
        calls = turn.round_ended()
        if calls is None:
            return turn.finish()
        if calls:
            turn.run_tools(calls)
        request = turn.request()


async def _drive_async(turn: Turn, client: AsyncClient) -> Answer:
    """Drive ``turn`` on the event loop: cancelling the task stops at once, keeping what arrived."""
    request = turn.request()
    if turn.wants_models:
        try:
            models: list[ModelInfo] | None = await client.list_models()
        except ClaudeError:
            models = None
        turn.learn_models(models)
        request = turn.request()
    if (hit := turn.cached()) is not None:
        return hit
    if turn.approve is not None:
        turn.approve(request)
    while True:
        async with client.stream(request) as stream:
            turn.stream_started(stream)
            try:
                async for event in stream:
                    turn.show(event)
            except (ClaudeError, asyncio.CancelledError) as cause:
                raise turn.cut_off(cause) from None
        calls = turn.round_ended()
        if calls is None:
            return turn.finish()
        if calls:
            turn.run_tools(calls)
        request = turn.request()
