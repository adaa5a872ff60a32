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
goes (and after the answer cache, which costs nothing), the caller's ``approve`` may refuse it:
nothing is then sent or recorded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..api.errors import ClaudeError
from .conversation import CellRun, Exchange
from .session import listed_or_none

if TYPE_CHECKING:
    from ..api.accumulate import MessageAccumulator
    from ..api.client import AsyncClient, Client
    from ..api.protocol import Message, MessageRequest, ModelInfo, StreamEvent
    from ..api.settings import ClientSettings
    from .session import AskOptions, ClaudeSession, Prepared
    from .tools import ToolRun

ShowToolRun = Callable[["ToolRun"], None]
Approve = Callable[["MessageRequest"], None]
"""Looks at the first request a turn would send and raises to keep it from being sent (a cost
cap, a declined confirmation: see :mod:`claude_magic.core.spending`)."""


class Renderer(Protocol):
    """Where an answer streams to: the notebook, the terminal, the chat panel, a compare column."""

    def feed(self, text: str) -> None:
        """New answer text; cheap, called for every delta."""

    def feed_thinking(self, text: str) -> None:
        """New thinking text (shown collapsed above the answer, where the renderer can)."""

    def finish(self, text: str) -> None:
        """The answer is over (complete or not): show ``text``, the whole of it."""


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
    message: Message | None = None
    """The last round's message as the API sent it, every block kept (a forced tool call too)."""




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
    :meth:`show` for each event, :meth:`round_ended`; :meth:`tools_ran` between rounds;
    :meth:`cut_off` when a round breaks."""

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

    steps: list[dict[str, Any]] = field(default_factory=list)
    """Tool rounds so far: assistant ``tool_use`` and user ``tool_result`` messages."""
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    _prepared: Prepared | None = None
    _renderer: Renderer | None = None
    _accumulator: MessageAccumulator | None = None
    _calls_not_run_because: str = "no tools were offered for it"

    # --- what to send -----------------------------------------------------------------------

    def request(self) -> MessageRequest:
        """The next round's request (the first round's history is cut where the budget says)."""
        self._prepared = self.session.prepare(self.question, self.options, self.cell, self.steps)
        return self._prepared.request

    @property
    def wants_models(self) -> bool:
        """The budget cut the history against an assumed context window: the driver should
        fetch the model listing (:meth:`learn_models`) and ask for the request again."""
        return self._prepared is not None and self._prepared.unsure and not self.session.models_known

    def learn_models(self, models: list[ModelInfo] | None) -> None:
        self.session.learn_models(models)

    def cached(self) -> Answer | None:
        """The answer to this exact request from the answer cache, shown and recorded; None
        when the cache is off for it, or holds nothing."""
        key = self._cache_key()
        if key is None or self.options.fresh or (hit := self.session.answer_cache.get(key)) is None:
            return None
        from ..api.accumulate import MessageAccumulator

        self._renderer = self.open_renderer()
        self._accumulator = MessageAccumulator.of_message(hit.message)
        return self._conclude(cached_at=hit.saved_at)

    def _cache_key(self) -> str | None:
        if not self.options.cached or self.options.tools:
            return None
        from .answer_cache import request_key

        assert self._prepared is not None, "request() comes first"
        body = self.session.client(self.settings).message_body(self._prepared.request, stream=True)
        return request_key(body, self.settings.api_version, self.settings.base_url)

    # --- a round streaming ------------------------------------------------------------------

    def stream_started(self, accumulator: MessageAccumulator) -> None:
        """A round's stream opened: its answer gets a renderer of its own."""
        assert self._prepared is not None, "request() comes first"
        self.session.note_sent(self._prepared, self.options)
        self._accumulator = accumulator
        self._renderer = self.open_renderer()

    def show(self, event: StreamEvent) -> None:
        from ..api.client import text_of, thinking_of

        if self._renderer is None:
            return
        if thinking := thinking_of(event):
            self._renderer.feed_thinking(thinking)
        elif text := text_of(event):
            if self.first_token is None:
                self.first_token = time.monotonic() - self.started
            self._renderer.feed(text)

    def round_ended(self) -> list[dict[str, Any]] | None:
        """The tool calls to run before the next round, or None when the answer is complete
        (calls that may not run become a note in the recorded answer)."""
        accumulator = self._accumulator
        assert accumulator is not None, "stream_started() comes first"
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
        self.steps += [
            {"role": "assistant", "content": self._accumulator.content()},
            {"role": "user", "content": [r.result_block() for r in runs]},
        ]

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

    def _conclude(self, cached_at: float | None = None) -> Answer:
        from ..api.accumulate import MessageAccumulator

        accumulator = self._accumulator or MessageAccumulator()
        message = accumulator.message()
        self._finish_showing(message.text)
        content, calls_not_run = sendable_answer(accumulator, self._calls_not_run_because)
        fitted = self._prepared.fitted if self._prepared is not None else None
        usage, estimated = counted_output(accumulator)
        answer = Answer(
            text=message.text,
            model=message.model or self.options.model,
            usage=usage,
            output_estimated=estimated,
            content=content,
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
        if cached_at is None:  # a cached answer cost nothing this time
            self._tally(answer.usage, separately=not self.record or not self.options.use_history, model=answer.model)
        if self.record and self.options.use_history:
            self.session.conversation.record(self._exchange(answer))
        return answer

    def _exchange(self, answer: Answer) -> Exchange:
        return Exchange(
            question=self.question,
            answer=answer.content,
            cell=self.cell or CellRun(),
            model=answer.model,
            usage=answer.usage,
            complete=answer.complete,
            steps=list(self.steps),
        )

    def _tally(self, usage: dict[str, Any], *, separately: bool, model: str | None = None) -> None:
        """Count a request's usage in the session; ``separately``: in the notebook's log too,
        for a request whose usage no recorded exchange carries."""
        self.session.tally(model or self.options.model, usage, log=separately)

    def _finish_showing(self, text: str) -> None:
        """This round's text is complete: show all of it (the next round gets its own renderer)."""
        if self._renderer is not None:
            self._renderer.finish(text)
            self._renderer = None


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
) -> Answer:
    """Send ``question`` with the history, stream the answer into the renderer ``open_renderer``
    makes once it starts, and record the exchange. Raises :class:`AnswerCutOff` (keeping what
    arrived) when the stream breaks or Ctrl-C stops it, and the client's errors when no answer
    started."""
    turn = Turn(session, question, options, settings, open_renderer, cell, show_tool_run, approve=approve)
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
    client: AsyncClient | None = None,
) -> Answer:
    """:func:`ask` on the event loop; cancelling the task stops the answer and keeps what
    arrived. ``record=False``: the answer joins the conversation only if kept (compare).
    ``client``: ask with this one (a job's own) rather than the session's for this loop."""
    turn = Turn(session, question, options, settings, open_renderer, cell, show_tool_run, record=record, approve=approve)
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
            turn.stream_started(stream.accumulator)
            try:
                for event in stream:
                    turn.show(event)
            except (ClaudeError, KeyboardInterrupt) as cause:
                raise turn.cut_off(cause) from None
        calls = turn.round_ended()
        if calls is None:
            return turn.finish()
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
            turn.stream_started(stream.accumulator)
            try:
                async for event in stream:
                    turn.show(event)
            except (ClaudeError, asyncio.CancelledError) as cause:
                raise turn.cut_off(cause) from None
        calls = turn.round_ended()
        if calls is None:
            return turn.finish()
        turn.run_tools(calls)
        request = turn.request()
