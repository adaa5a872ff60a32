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

from .config import ClientSettings, Effort
from .conversation import CellRun, Conversation, Exchange
from .errors import ClaudeError

if TYPE_CHECKING:
    from .accumulate import MessageAccumulator
    from .client import AsyncClient, Client
    from .context import Attachment
    from .protocol import MessageRequest, StreamEvent
    from .render import Renderer


@dataclass(frozen=True)
class AskOptions:
    model: str
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    effort: Effort | None = None
    use_history: bool = True
    """False for a one-off that neither sends nor records history."""


@dataclass
class Answer:
    text: str
    model: str
    usage: dict[str, Any] = field(default_factory=dict)
    time_to_first_token: float | None = None
    total_time: float = 0.0
    stop_reason: str | None = None
    complete: bool = True


class AnswerCutOff(ClaudeError):
    """The answer stopped before its end (an error, or an interrupt); ``answer`` is what
    arrived, already shown and recorded."""

    def __init__(self, answer: Answer, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.answer = answer
        self.cause = cause


class ClaudeSession:
    def __init__(self) -> None:
        self.conversation = Conversation()
        self._client: Client | None = None
        self._async_client: AsyncClient | None = None

    def client(self, settings: ClientSettings) -> Client:
        """A client for ``settings``, reused until they change."""
        if self._client is None or self._client.settings != settings:
            from .client import AsyncClient, Client

            self.close()
            self._client = Client(settings)
        return self._client

    def async_client(self, settings: ClientSettings) -> AsyncClient:
        """An async client for ``settings`` on the running event loop, reused until they change."""
        if self._async_client is None or self._async_client.settings != settings:
            from .client import AsyncClient

            self._retire_async_client()
            self._async_client = AsyncClient(settings)
        return self._async_client

    def _retire_async_client(self) -> None:
        """Close the async client on the running loop (without one, nothing is open to close)."""
        old, self._async_client = self._async_client, None
        if old is not None:
            try:
                asyncio.get_running_loop().create_task(old.aclose())
            except RuntimeError:
                pass

    def close(self) -> None:
        self._retire_async_client()
        if self._client is not None:
            self._client.close()
            self._client = None

    def attachment_blocks(self, attachments: list[Attachment]) -> list[dict[str, Any]]:
        """The blocks that carry ``attachments``; an image the conversation already holds is
        named, not sent again (the earlier copy is still in the history)."""
        sent = self.conversation.image_digests()
        blocks: list[dict[str, Any]] = []
        for attachment in attachments:
            image = attachment.image
            if image is not None and image.digest in sent:
                blocks.append({"type": "text", "text": f"Attached image {attachment.label}: the same image as one attached earlier in this conversation."})
                continue
            if image is not None:
                sent.add(image.digest)
            blocks += attachment.blocks()
        return blocks

    def build_request(self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None = None) -> MessageRequest:
        """The request that asking ``question`` from ``cell`` sends; changes nothing."""
        from .protocol import MessageRequest, OutputConfig

        history = self.conversation.messages(cell or CellRun()) if options.use_history else []
        return MessageRequest.model_validate(
            {
                "model": options.model,
                "max_tokens": options.max_tokens,
                "messages": [*history, {"role": "user", "content": question}],
                "system": options.system or None,
                "temperature": options.temperature,
                "output_config": OutputConfig(effort=options.effort) if options.effort else None,
            }
        )

    def ask(
        self,
        question: list[dict[str, Any]],
        options: AskOptions,
        settings: ClientSettings,
        open_renderer: Callable[[], Renderer],
        cell: CellRun | None = None,
    ) -> Answer:
        """Send ``question`` with the history, stream the answer into the renderer that
        ``open_renderer`` makes once the answer starts, and record the exchange.

        Raises :class:`AnswerCutOff` (keeping what arrived) when the stream breaks or is
        interrupted, and the client's errors when no answer started.
        """
        turn = _Turn(question, options, cell)
        with self.client(settings).stream(self.build_request(question, options, cell)) as stream:
            turn.renderer = open_renderer()
            try:
                for event in stream:
                    turn.show(event)
            except (ClaudeError, KeyboardInterrupt) as cause:
                raise AnswerCutOff(self._conclude(stream.accumulator, turn), cause) from None
            return self._conclude(stream.accumulator, turn)

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
        turn = _Turn(question, options, cell)
        async with self.async_client(settings).stream(self.build_request(question, options, cell)) as stream:
            turn.renderer = open_renderer()
            try:
                async for event in stream:
                    turn.show(event)
            except (ClaudeError, asyncio.CancelledError) as cause:
                raise AnswerCutOff(self._conclude(stream.accumulator, turn), cause) from None
            return self._conclude(stream.accumulator, turn)

    def _conclude(self, accumulator: MessageAccumulator, turn: _Turn) -> Answer:
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
        )
        if options.use_history:
            self.conversation.record(
                Exchange(
                    question=turn.question,
                    answer=accumulator.content() if answer.complete else _sendable_part(accumulator),
                    cell=turn.cell or CellRun(),
                    model=answer.model,
                    usage=answer.usage,
                    complete=answer.complete,
                )
            )
        return answer


@dataclass
class _Turn:
    """One question on its way: what was asked, where it shows, and its timing."""

    question: list[dict[str, Any]]
    options: AskOptions
    cell: CellRun | None
    renderer: Renderer | None = None
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None

    def show(self, event: StreamEvent) -> None:
        from .client import text_of

        if (text := text_of(event)) and self.renderer is not None:
            if self.first_token is None:
                self.first_token = time.monotonic() - self.started
            self.renderer.feed(text)


def _sendable_part(accumulator: MessageAccumulator) -> list[dict[str, Any]]:
    """The text of a cut-off answer: its unfinished thinking or tool blocks can't be sent back."""
    return [b for b in accumulator.content() if b.get("type") == "text" and b.get("text")]
