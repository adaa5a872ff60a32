"""Asking Claude from a notebook: history in, streamed answer out, exchange recorded.

:class:`ClaudeSession` is the notebook-wide state (the conversation and a client kept
while the settings stay the same). It knows nothing of magics or widgets: the magic and the
chat panel both call :meth:`ClaudeSession.ask` with a renderer of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .budget import ContextWindows, Cut, Fitted
from .config import ClientSettings, Effort
from .conversation import CellRun, Conversation, Exchange
from .errors import ClaudeError, ConfigurationError
from .pricing import Tally

if TYPE_CHECKING:
    from .accumulate import MessageAccumulator
    from .answer_cache import AnswerCache
    from .client import AsyncClient, Client
    from .context import Attachment
    from .protocol import MessageRequest, ModelInfo, StreamEvent
    from .render import Renderer
    from .tools import Tool, ToolRun


@dataclass(frozen=True)
class AskOptions:
    model: str
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    effort: Effort | None = None
    use_history: bool = True
    """False for a one-off that neither sends nor records history."""
    cached: bool = False
    """Answer an identical earlier request from the answer cache (and keep this answer in it)."""
    fresh: bool = False
    """With ``cached``: ask anyway, and replace the cached answer."""
    thinking: dict[str, Any] | None = None
    """The request's ``thinking`` (``{"type": "adaptive"}``, or ``enabled`` with a budget)."""
    tools: tuple[Tool, ...] = ()
    """Python functions the model may call; the tool loop runs at most ``max_tool_rounds``."""
    max_tool_rounds: int = 8


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


@dataclass
class Prepared:
    """A request ready to send, and what the context budget left out of it."""

    request: MessageRequest
    fitted: Fitted
    unsure: bool = False
    """History was left out against an assumed context window: ask the server for the real one."""


class AnswerCutOff(ClaudeError):
    """The answer stopped before its end (an error, or an interrupt); ``answer`` is what
    arrived, already shown and recorded."""

    def __init__(self, answer: Answer, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.answer = answer
        self.cause = cause


class ClaudeSession:
    def __init__(self, locate: Callable[[], str | None] | None = None) -> None:
        self._locate = locate or (lambda: None)
        self._conversation: Conversation | None = None
        self.prompt_caching = True
        """Mark the stable prefix of each request with cache_control (see :mod:`.caching`)."""
        self.context_budget: int | None = None
        """Most input tokens a request may hold; None: the model's context window less max_tokens."""
        self.windows = ContextWindows()
        self._cut: Cut | None = None
        """Where the context budget last cut the history (cut there again while it fits)."""
        self.usage = Tally()
        """Tokens and cost of every answer this session (the notebook's are in its store)."""
        self._client: Client | None = None
        self._async_client: AsyncClient | None = None
        self._answer_cache: AnswerCache | None = None
        self._models: list[ModelInfo] | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    @property
    def conversation(self) -> Conversation:
        """The notebook's conversation, restored from its store on first use."""
        if self._conversation is None:
            self._conversation = Conversation.open(self._locate())
        return self._conversation

    def _keep_secret(self, settings: ClientSettings) -> None:
        """Tell the store which credentials to keep off the disk."""
        if (store := self.conversation.store) is not None:
            store.secrets = settings.credentials.secrets()

    def client(self, settings: ClientSettings) -> Client:
        """A client for ``settings``, reused until they change."""
        if self._client is None or self._client.settings != settings:
            from .client import Client

            self.close()
            self._client = Client(settings)
        return self._client

    def async_client(self, settings: ClientSettings) -> AsyncClient:
        """An async client for ``settings`` on the running event loop, reused until they change
        or the loop does (widget callbacks may run on a kernel subshell's own loop)."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_client.settings != settings or self._async_loop is not loop:
            from .client import AsyncClient

            self._retire_async_client()
            self._async_client, self._async_loop = AsyncClient(settings), loop
        return self._async_client

    def _retire_async_client(self) -> None:
        """Close the async client on the loop it was made on (a closed loop has nothing open)."""
        old, loop = self._async_client, self._async_loop
        self._async_client = self._async_loop = None
        if old is not None and loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(old.aclose(), loop)

    def close(self) -> None:
        self._retire_async_client()
        if self._client is not None:
            self._client.close()
            self._client = None

    def attachment_blocks(self, attachments: list[Attachment]) -> list[dict[str, Any]]:
        """The blocks that carry ``attachments``. An image already in the conversation is held
        once (its block takes the conversation's text) and sent once (:meth:`prepare` turns
        later copies into a note)."""
        from .images import share_data

        known = [block for exchange in self.conversation.exchanges for block in exchange.question]
        return share_data([block for attachment in attachments for block in attachment.blocks()], known)

    def build_request(self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None = None) -> MessageRequest:
        """The request that asking ``question`` from ``cell`` sends; changes nothing."""
        return self.prepare(question, options, cell).request

    def prepare(
        self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None = None, steps: list[dict[str, Any]] | None = None
    ) -> Prepared:
        """The request for ``question``: the history that fits the context budget, with the
        stable prefix marked for prompt caching. No I/O: a context window not yet known is
        assumed (and :attr:`Prepared.unsure` says whether that mattered)."""
        from . import caching
        from .budget import FALLBACK_CONTEXT_WINDOW, Limit, fit_history, input_limit, measure
        from .images import drop_repeated_images
        from .protocol import MessageRequest, OutputConfig

        history = self.conversation.history(cell or CellRun()) if options.use_history else []
        window = self.windows.of(options.model)
        fixed = measure([{"role": "user", "content": question}], options.system)
        limit = Limit(input_limit(self.context_budget, window or FALLBACK_CONTEXT_WINDOW, options.max_tokens))
        fitted = fit_history(history, fixed, limit, self._cut)
        *sent_history, sent_question = drop_repeated_images([*fitted.messages(), {"role": "user", "content": question}])
        if self.prompt_caching:
            system, messages = caching.mark(options.system, sent_history, sent_question["content"])
        else:
            system, messages = options.system or None, caching.unmarked([*sent_history, sent_question])
        request = MessageRequest.model_validate(
            {
                "model": options.model,
                "max_tokens": options.max_tokens,
                "messages": [*messages, *(steps or [])],
                "system": system,
                "temperature": options.temperature,
                "output_config": OutputConfig(effort=options.effort) if options.effort else None,
                "thinking": options.thinking,
                **({"tools": [tool.definition() for tool in options.tools]} if options.tools else {}),
            }
        )
        # Only a limit set by the assumed window (not by the budget) is worth checking with the server.
        return Prepared(request, fitted, unsure=window is None and fitted.trimmed and limit.tokens != self.context_budget)

    def _prepare_sending(
        self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None, settings: ClientSettings, steps: list[dict[str, Any]] | None = None
    ) -> Prepared:
        """:meth:`prepare`, asking the server for the context window when it matters."""
        self._keep_secret(settings)
        prepared = self.prepare(question, options, cell, steps)
        if prepared.unsure:
            self._listed_models(settings)
            prepared = self.prepare(question, options, cell, steps)
        return self._sending(prepared, options)

    def model_info(self, model: str, settings: ClientSettings) -> ModelInfo | None:
        """What ``/v1/models`` says of ``model``; None if unlisted or unknown."""
        return next((m for m in self._listed_models(settings) if m.id == model), None)

    def _listed_models(self, settings: ClientSettings) -> list[ModelInfo]:
        """The server's models, asked for once a session (for context windows and capabilities
        alike); empty when it can't list them."""
        if self._models is None:
            listed = _models_or_none(self.client(settings).list_models)
            self._models = listed or []
            self.windows.learn(listed)
        return self._models

    def _sending(self, prepared: Prepared, options: AskOptions) -> Prepared:
        """Remember where the history was cut, to cut it there next time (the cache's prefix)."""
        if options.use_history:
            self._cut = prepared.fitted.cut
        return prepared

    def ask(
        self,
        question: list[dict[str, Any]],
        options: AskOptions,
        settings: ClientSettings,
        open_renderer: Callable[[], Renderer],
        cell: CellRun | None = None,
        show_tool_run: Callable[[ToolRun], None] | None = None,
    ) -> Answer:
        """Send ``question`` with the history, stream the answer into the renderer that
        ``open_renderer`` makes once the answer starts, and record the exchange. With tools,
        each ``tool_use`` round runs the named functions, shows each run and asks again, at
        most ``options.max_tool_rounds`` times; the whole exchange is recorded.

        Raises :class:`AnswerCutOff` (keeping what arrived) when the stream breaks or is
        interrupted, and the client's errors when no answer started.
        """
        steps: list[dict[str, Any]] = []
        prepared = self._prepare_sending(question, options, cell, settings)
        cache_key = self._cache_key(prepared, settings) if options.cached and not options.tools else None
        if cache_key is not None and not options.fresh and (hit := self.answer_cache.get(cache_key)) is not None:
            from .accumulate import MessageAccumulator

            turn = _Turn(question, options, cell, prepared.fitted, open_renderer())
            return self._conclude(MessageAccumulator.of_message(hit.message), turn, cached_at=hit.saved_at)
        while True:
            turn = _Turn(question, options, cell, prepared.fitted, steps=steps)
            accumulator = self._stream_round(prepared.request, turn, settings, open_renderer)
            if not (accumulator.stop_reason == "tool_use" and options.tools and len(steps) < 2 * options.max_tool_rounds):
                break
            runs = self._run_tools(accumulator.content(), options, show_tool_run)
            self.usage.add(options.model, accumulator.usage)
            steps += [{"role": "assistant", "content": accumulator.content()}, {"role": "user", "content": [r.result_block() for r in runs]}]
            prepared = self._prepare_sending(question, options, cell, settings, steps)
        answer = self._conclude(accumulator, turn)
        if cache_key is not None and answer.complete:
            self.answer_cache.put(cache_key, accumulator.message().to_wire())
        return answer

    def _stream_round(self, request: MessageRequest, turn: _Turn, settings: ClientSettings, open_renderer: Callable[[], Renderer]) -> MessageAccumulator:
        """One request streamed into a new renderer; a broken one is concluded and raised."""
        with self.client(settings).stream(request) as stream:
            turn.renderer = open_renderer()
            try:
                for event in stream:
                    turn.show(event)
            except (ClaudeError, KeyboardInterrupt) as cause:
                raise AnswerCutOff(self._conclude(stream.accumulator, turn), cause) from None
            return stream.accumulator

    @staticmethod
    def _run_tools(content: list[dict[str, Any]], options: AskOptions, show: Callable[[ToolRun], None] | None) -> list[ToolRun]:
        """Run each ``tool_use`` block of an answer (only the user's named functions can run)."""
        from .tools import run

        by_name = {tool.name: tool for tool in options.tools}
        runs = []
        for block in content:
            if block.get("type") == "tool_use":
                runs.append(tool_run := run(by_name, block))
                if show is not None:
                    show(tool_run)
        return runs

    def _cache_key(self, prepared: Prepared, settings: ClientSettings) -> str:
        from .answer_cache import request_key
        from .client import Client

        body = Client(settings).message_body(prepared.request, stream=True)
        return request_key(body, settings.api_version, settings.base_url)

    @property
    def answer_cache(self) -> AnswerCache:
        if self._answer_cache is None:
            from .answer_cache import AnswerCache

            self._answer_cache = AnswerCache()
        return self._answer_cache

    async def ask_async(
        self,
        question: list[dict[str, Any]],
        options: AskOptions,
        settings: ClientSettings,
        open_renderer: Callable[[], Renderer],
        cell: CellRun | None = None,
    ) -> Answer:
        """:meth:`ask` on the event loop; cancelling the task stops the answer and keeps
        what arrived (raised as :class:`AnswerCutOff` with a ``CancelledError`` cause)."""
        self._keep_secret(settings)
        prepared = self.prepare(question, options, cell)
        if prepared.unsure:
            try:
                models: list[ModelInfo] | None = await self.async_client(settings).list_models()
            except ClaudeError:
                models = None
            self.windows.learn(models)
            prepared = self.prepare(question, options, cell)
        self._sending(prepared, options)
        turn = _Turn(question, options, cell, prepared.fitted)
        async with self.async_client(settings).stream(prepared.request) as stream:
            turn.renderer = open_renderer()
            try:
                async for event in stream:
                    turn.show(event)
            except (ClaudeError, asyncio.CancelledError) as cause:
                raise AnswerCutOff(self._conclude(stream.accumulator, turn), cause) from None
            return self._conclude(stream.accumulator, turn)

    def _conclude(self, accumulator: MessageAccumulator, turn: _Turn, cached_at: float | None = None) -> Answer:
        """Show the answer's final state and record the exchange, complete or not."""
        message = accumulator.message()
        if turn.renderer is not None:
            turn.renderer.finish(message.text)
        options = turn.options
        answer = Answer(
            text=message.text,
            model=message.model or options.model,
            usage=accumulator.usage,
            time_to_first_token=turn.first_token,
            total_time=time.monotonic() - turn.started,
            stop_reason=message.stop_reason,
            complete=accumulator.complete,
            turns_left_out=turn.fitted.turns_left_out,
            images_left_out=turn.fitted.images_left_out,
            cached_at=cached_at,
        )
        if cached_at is None:  # a cached answer cost nothing this time
            self.usage.add(answer.model, answer.usage)
        if not options.use_history:
            self.conversation.note_usage(answer.model, answer.usage)
        else:
            self.conversation.record(
                Exchange(
                    question=turn.question,
                    answer=accumulator.content() if answer.complete else _sendable_part(accumulator),
                    cell=turn.cell or CellRun(),
                    model=answer.model,
                    usage=answer.usage,
                    complete=answer.complete,
                    steps=list(turn.steps),
                )
            )
        return answer


@dataclass
class _Turn:
    """One question on its way: what was asked, where it shows, and its timing."""

    question: list[dict[str, Any]]
    options: AskOptions
    cell: CellRun | None
    fitted: Fitted
    renderer: Renderer | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Tool rounds so far (see :attr:`Exchange.steps`)."""
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

    def show(self, event: StreamEvent) -> None:
        from .client import text_of, thinking_of

        if (thinking := thinking_of(event)) and self.renderer is not None:
            self.renderer.feed_thinking(thinking)
        elif (text := text_of(event)) and self.renderer is not None:
            if self.first_token is None:
                self.first_token = time.monotonic() - self.started
            self.renderer.feed(text)


def thinking_request(model: str, info: ModelInfo | None, budget: int, max_tokens: int) -> dict[str, Any]:
    """The ``thinking`` a model takes: adaptive where it can (``budget`` 0), a budget where it
    takes one. Unknown capabilities: send what was asked and let the API say."""
    types = ((info.model_extra or {}).get("capabilities") or {}).get("thinking", {}).get("types", {}) if info else {}
    adaptive, enabled = (bool(types.get(kind, {}).get("supported")) for kind in ("adaptive", "enabled"))
    if budget == 0:
        if enabled and not adaptive:
            return {"type": "enabled", "budget_tokens": max(1024, min(max_tokens // 2, 8192))}
        return {"type": "adaptive"}
    if adaptive and not enabled:
        raise ConfigurationError(f"{model} thinks adaptively and takes no budget: use --think without N, and --effort to steer it")
    if not 1024 <= budget < max_tokens:
        raise ConfigurationError(f"--think {budget}: a thinking budget is at least 1024 tokens and less than --max-tokens ({max_tokens})")
    return {"type": "enabled", "budget_tokens": budget}


def _models_or_none(list_models: Callable[[], list[ModelInfo]]) -> list[ModelInfo] | None:
    """The server's models, or None when it can't list them (a proxy, a stand-in, an outage)."""
    try:
        return list_models()
    except ClaudeError:
        return None


def _sendable_part(accumulator: MessageAccumulator) -> list[dict[str, Any]]:
    """The text of a cut-off answer: its unfinished thinking or tool blocks can't be sent back."""
    return [b for b in accumulator.content() if b.get("type") == "text" and b.get("text")]
