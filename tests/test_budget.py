"""The context budget: old images leave first, then old turns; the question always goes; the
context window is asked for only when it matters, once, and assumed when it can't be."""

from __future__ import annotations

import base64
import io
import json
import math
from typing import Any

import pytest

from claude_magic.api.errors import APIConnectionError
from claude_magic.api.protocol import ModelInfo
from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core import budget, engine
from claude_magic.core.budget import (
    CUT_SLACK,
    FALLBACK_CONTEXT_WINDOW,
    IMAGE_LEFT_OUT,
    ContextWindows,
    Limit,
    Size,
    fit_history,
    input_limit,
    left_out_note,
    measure,
)
from claude_magic.core.conversation import CellRun, Exchange
from claude_magic.core.session import AskOptions, ClaudeSession, listed_or_none
from claude_magic.testing import StandIn
from claude_magic.testing.pytest_plugin import STAND_IN_KEY


def measured_tokens(messages: list[dict[str, Any]]) -> int:
    return measure(messages).tokens


def picture() -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (750, 1000), "teal").save(buffer, "PNG")  # ~1,000 tokens
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(buffer.getvalue()).decode()}}


def turn(text: str, *, image: bool = False, words: int = 200) -> Exchange:
    question = [picture()] if image else []
    answer = " ".join(["word"] * words)
    return Exchange([*question, {"type": "text", "text": text}], [{"type": "text", "text": answer}], CellRun())


def sizes(history: list[Exchange]) -> list[int]:
    return [measured_tokens(e.messages()) for e in history]


def test_everything_fits_nothing_changes() -> None:
    history = [turn("a"), turn("b")]
    fitted = fit_history(history, Size(100), Limit(10_000))
    assert fitted.history == history and not fitted.trimmed


def limit_for(target: int) -> Limit:
    """The limit whose cut lands on ``target`` tokens (a cut leaves room to spare)."""
    return Limit(math.ceil(target / (1 - CUT_SLACK)) + 2)  # + rounding


def test_old_images_leave_before_any_turn() -> None:
    history = [turn("a", image=True), turn("b", image=True), turn("c")]
    full = sum(sizes(history))
    without_image = Exchange([{"type": "text", "text": IMAGE_LEFT_OUT}, {"type": "text", "text": "a"}], history[0].answer, CellRun())
    image_tokens = sizes(history)[0] - sizes([without_image])[0]
    fitted = fit_history(history, Size(), limit_for(full - image_tokens))  # one image too many
    assert (fitted.turns_left_out, fitted.images_left_out) == (0, 1)
    assert fitted.history[0].question[0] == {"type": "text", "text": IMAGE_LEFT_OUT}
    assert fitted.history[1] is history[1] and history[0].question[0]["type"] == "image"  # the conversation is untouched


def test_then_the_oldest_turns_leave() -> None:
    history = [turn(t) for t in "abcde"]
    each = sizes(history)[0]
    fitted = fit_history(history, Size(50), limit_for(50 + 2 * each))
    assert fitted.turns_left_out == 3 and [e.question[-1]["text"] for e in fitted.history] == ["d", "e"]
    assert fit_history(history, Size(10**9), Limit(10)).history == []  # even nothing but the question: it is still sent


def test_a_cut_history_is_cut_at_the_same_place_while_it_fits() -> None:
    """So that the prefix sent, and cached, stays the same from one question to the next."""
    history = [turn(t, image=t == "b") for t in "abcdef"]
    limit = limit_for(sum(sizes(history[3:])))
    first = fit_history(history, Size(), limit)
    kept = [e.question[-1]["text"] for e in first.history]
    history.append(turn("g"))
    again = fit_history(history, Size(), limit, first.cut)
    assert [e.question[-1]["text"] for e in again.history] == [*kept, "g"]
    assert again.messages()[: len(first.messages())] == first.messages()
    while fit_history(history, Size(), limit, first.cut).cut == first.cut:  # until it no longer fits
        history.append(turn("more"))
    assert fit_history(history, Size(), limit, first.cut).turns_left_out > first.turns_left_out
    history.remove(first.cut.dropped_through)  # its cell was re-run: cut anew
    assert fit_history(history, Size(), limit, first.cut).cut != first.cut


def noise(megabytes: float, seed: int) -> dict:
    """An incompressible PNG image block of about ``megabytes`` (as a photograph would be)."""
    import numpy as np
    from PIL import Image

    side = int((megabytes * 2**20 / 3) ** 0.5)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buffer, "PNG")
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(buffer.getvalue()).decode()}}


def test_old_images_leave_when_the_bytes_would_pass_the_limit_though_the_tokens_fit() -> None:
    history = [Exchange([noise(0.5, n), {"type": "text", "text": f"q{n}"}], [{"type": "text", "text": "a"}], CellRun()) for n in range(10)]
    limit = Limit(tokens=10**6, bytes=3_000_000)  # ~0.7 MB of base64 a turn: four turns' worth
    fitted = fit_history(history, Size(), limit)
    assert (fitted.turns_left_out, fitted.images_left_out) == (0, 7)
    assert [e.question[0]["type"] for e in fitted.history] == ["text"] * 7 + ["image"] * 3  # the newest stay
    assert fitted.size().bytes <= limit.with_slack().bytes
    request = json.dumps([m for e in fitted.history for m in e.messages()]).encode()
    assert len(request) <= limit.with_slack().bytes


def test_old_images_leave_past_the_most_images_a_request_takes() -> None:
    history = [turn(f"q{n}", image=True, words=1) for n in range(8)]
    fitted = fit_history(history, Size(images=1), Limit(tokens=10**6, images=6))
    assert fitted.images_left_out == 5 and 1 + fitted.size().images == 4  # the question's and three more: 6 less the slack


def test_each_exchange_is_measured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fitting the history again for the next question measures only what is new."""
    measured: list[int] = []
    count = budget._count
    monkeypatch.setattr(budget, "_count", lambda messages, system: measured.append(len(messages)) or count(messages, system))
    history = [turn(t, image=True) for t in "abcdef"]
    limit = limit_for(sum(sizes(history[3:])))
    cut = fit_history(history, Size(), limit).cut
    measured.clear()
    history.append(turn("g"))
    for _ in range(3):
        assert fit_history(history, Size(), limit, cut).cut == cut
    assert measured == [2]  # "g": its question and answer
    history[-1].answer = [{"type": "text", "text": "a longer answer than before " * 50}]  # changed: measured again
    changed = budget.size_of(history[-1])
    assert measured == [2, 2] and changed.tokens == measured_tokens(history[-1].messages())


def test_limits_and_notes() -> None:
    assert input_limit(None, 1_000_000, 8_192) == 991_808
    assert input_limit(50_000, 1_000_000, 8_192) == 50_000
    assert input_limit(2_000_000, 200_000, 8_192) == 191_808
    assert left_out_note(3, 0) == "3 earlier turns not sent"
    assert left_out_note(1, 2) == "1 earlier turn and 2 earlier images not sent"
    assert left_out_note(0, 0) == ""


def test_windows_are_learnt_once_and_assumed_when_the_server_cant_say() -> None:
    windows = ContextWindows()
    assert windows.of("claude-haiku-4-5") is None
    windows.learn([ModelInfo(id="claude-haiku-4-5", max_input_tokens=200_000), ModelInfo(id="claude-sonnet-5-5", max_input_tokens=1_000_000)])
    assert windows.of("claude-haiku-4-5-20251001") == 200_000 and windows.of("claude-sonnet-5-5") == 1_000_000
    assert windows.of("claude-unlisted") == FALLBACK_CONTEXT_WINDOW

    def unreachable() -> list[ModelInfo]:
        raise APIConnectionError("could not reach the server")

    assert listed_or_none(unreachable) is None
    windows.learn(None)
    assert windows.of("claude-sonnet-5-5") == FALLBACK_CONTEXT_WINDOW


class Quiet:
    def feed(self, text: str) -> None:
        pass

    def finish(self, text: str) -> None:
        pass


def ask(session: ClaudeSession, server: StandIn, question: str, model: str = "claude-sonnet-5-5"):
    settings = ClientSettings(credentials=Credentials(api_key=STAND_IN_KEY), base_url=server.base_url)
    return engine.ask(session, [{"type": "text", "text": question}], AskOptions(model=model, max_tokens=1024), settings, Quiet)


def test_a_small_budget_leaves_out_the_oldest_turns_and_says_so(shared_stand_in: StandIn) -> None:
    session = ClaudeSession()
    session.context_budget = 1_500
    answers = [ask(session, shared_stand_in, f"question {n} [[words=150]]") for n in range(6)]
    sent = shared_stand_in.message_requests[-1].prompts()
    assert sent[-1] == "question 5 [[words=150]]" and "question 0 [[words=150]]" not in sent
    assert answers[-1].turns_left_out == 6 - len(sent) > 0
    assert measured_tokens(shared_stand_in.message_requests[-1].messages) <= 1_500
    assert len(session.conversation) == 6  # left out of the request, not out of the conversation
    assert not [r for r in shared_stand_in.requests if r.path == "/v1/models"]  # a budget needs no window


def test_the_window_is_asked_for_once_and_only_for_a_large_conversation(shared_stand_in: StandIn) -> None:
    session = ClaudeSession()
    ask(session, shared_stand_in, "small")
    assert not [r for r in shared_stand_in.requests if r.path == "/v1/models"]
    big = " ".join(["lorem"] * 40_000)  # ~80K estimated tokens a turn
    session.conversation.exchanges += [Exchange([{"type": "text", "text": f"big {n}"}], [{"type": "text", "text": big}], CellRun()) for n in range(3)]
    on_sonnet = ask(session, shared_stand_in, "on a 1M model")
    on_haiku = ask(session, shared_stand_in, "on a 200K model", model="claude-haiku-4-5")
    assert len([r for r in shared_stand_in.requests if r.path == "/v1/models"]) == 1
    assert on_sonnet.turns_left_out == 0 and on_haiku.turns_left_out >= 1
