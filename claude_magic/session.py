"""Asking Claude from a notebook: history in, streamed answer out, exchange recorded.

:class:`ClaudeSession` is the notebook-wide state (the conversation and a client kept
while the settings stay the same). It knows nothing of magics or widgets: the magic and the
chat panel both call :meth:`ClaudeSession.ask` with a renderer of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import ClientSettings, Effort
from .conversation import CellRun, Conversation, Exchange
from .errors import ClaudeError

if TYPE_CHECKING:
    from .accumulate import MessageAccumulator
    from .client import Client
    from .context import Attachment
    from .protocol import MessageRequest
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

    def client(self, settings: ClientSettings) -> Client:
        """A client for ``settings``, reused until they change."""
        if self._client is None or self._client.settings != settings:
            from .client import Client

            self.close()
            self._client = Client(settings)
        return self._client

    def close(self) -> None:
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
        from .client import text_of

        request = self.build_request(question, options, cell)
        client = self.client(settings)
        started = time.monotonic()
        first_token: float | None = None
        with client.stream(request) as stream:
            renderer = open_renderer()
            try:
                for event in stream:
                    if text := text_of(event):
                        if first_token is None:
                            first_token = time.monotonic() - started
                        renderer.feed(text)
            except (ClaudeError, KeyboardInterrupt) as cause:
                answer = self._conclude(stream.accumulator, question, options, cell, started, first_token, renderer)
                raise AnswerCutOff(answer, cause) from None
            return self._conclude(stream.accumulator, question, options, cell, started, first_token, renderer)

    def _conclude(
        self,
        accumulator: MessageAccumulator,
        question: list[dict[str, Any]],
        options: AskOptions,
        cell: CellRun | None,
        started: float,
        first_token: float | None,
        renderer: Renderer,
    ) -> Answer:
        """Show the answer's final state and record the exchange, complete or not."""
        message = accumulator.message()
        renderer.finish(message.text)
        answer = Answer(
            text=message.text,
            model=message.model or options.model,
            usage=accumulator.usage,
            time_to_first_token=first_token,
            total_time=time.monotonic() - started,
            stop_reason=message.stop_reason,
            complete=accumulator.complete,
        )
        if options.use_history:
            self.conversation.record(
                Exchange(
                    question=question,
                    answer=accumulator.content() if answer.complete else _sendable_part(accumulator),
                    cell=cell or CellRun(),
                    model=answer.model,
                    usage=answer.usage,
                    complete=answer.complete,
                )
            )
        return answer


def _sendable_part(accumulator: MessageAccumulator) -> list[dict[str, Any]]:
    """The text of a cut-off answer: its unfinished thinking or tool blocks can't be sent back."""
    return [b for b in accumulator.content() if b.get("type") == "text" and b.get("text")]
