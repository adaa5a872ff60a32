"""The session without a kernel: sync and async asking, cut-off answers kept, history recorded."""

from __future__ import annotations

import asyncio

import pytest

from claude_magic.api.settings import ClientSettings
from claude_magic.core import engine
from claude_magic.core.engine import AnswerCutOff
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.testing import StandIn

OPTIONS = AskOptions(model="claude-sonnet-5-5", max_tokens=1000)


class Collect:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.final: str | None = None

    def feed(self, text: str) -> None:
        self.pieces.append(text)

    def finish(self, text: str) -> None:
        self.final = text


def question(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": text}]


def test_ask_streams_records_and_sends_the_history(stand_in: StandIn) -> None:
    session, shown = ClaudeSession(), Collect()
    answer = engine.ask(session, question("one"), OPTIONS, ClientSettings(), lambda: shown)
    assert "".join(shown.pieces) == shown.final == answer.text == stand_in.message_requests[-1].answer
    assert answer.time_to_first_token is not None and answer.usage["output_tokens"] > 0
    engine.ask(session, question("two"), OPTIONS, ClientSettings(), Collect)
    assert stand_in.message_requests[-1].prompts() == ["one", "two"]
    session.close()


def test_ask_async_matches_ask(stand_in: StandIn) -> None:
    session, shown = ClaudeSession(), Collect()

    async def main() -> str:
        answer = await engine.ask_async(session, question("async one"), OPTIONS, ClientSettings(), lambda: shown)
        await engine.ask_async(session, question("async two"), OPTIONS, ClientSettings(), Collect)
        session.close()
        return answer.text

    assert asyncio.run(main()) == shown.final == stand_in.message_requests[0].answer
    assert stand_in.message_requests[-1].prompts() == ["async one", "async two"]


def test_cancelling_the_async_task_keeps_the_partial_answer(stand_in: StandIn) -> None:
    stand_in.fail(delay=0.05)
    session, shown = ClaudeSession(), Collect()

    async def main() -> AnswerCutOff:
        task = asyncio.create_task(engine.ask_async(session, question("long [[words=200]]"), OPTIONS, ClientSettings(), lambda: shown))
        while len(shown.pieces) < 5:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(AnswerCutOff) as cut:
            await task
        return cut.value

    cut = asyncio.run(main())
    assert isinstance(cut.cause, asyncio.CancelledError)
    assert cut.answer.text == shown.final and cut.answer.text and not cut.answer.complete
    assert stand_in.message_requests[-1].answer.startswith(cut.answer.text)
    assert session.conversation.exchanges[-1].answer == [{"type": "text", "text": cut.answer.text}]


def test_an_image_attached_again_is_held_once_and_sent_once(stand_in: StandIn) -> None:
    import io

    from PIL import Image

    from claude_magic.attach.registry import attach

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "teal").save(buffer, "PNG")
    session = ClaudeSession()
    for text in ("what is it?", "and again?"):
        engine.ask(session, [*session.held_once(attach("`img`", buffer.getvalue()).blocks()), *question(text)], OPTIONS, ClientSettings(), Collect)
    first, second = (exchange.question[1]["source"]["data"] for exchange in session.conversation.exchanges)
    assert first is second  # one text in the kernel, not one per attachment
    sent = [b["type"] for m in stand_in.message_requests[-1].messages if m["role"] == "user" for b in m["content"]]
    assert sent.count("image") == 1
    session.close()
