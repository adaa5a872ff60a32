"""The context budget: how much of the history a question can take along.

Before a request is sent its size is estimated locally (no round trip): about four characters
a token for text, width × height / 750 for an image, plus a margin because newer models'
tokenizer counts about 30% more tokens for the same text. When the history would push the
request past its limit (the configured budget, or the model's context window less
``max_tokens``) the oldest images are left out first, then the oldest turns, and the
answer's footer says so. The current question is always sent whole. The history is cut with
room to spare and then cut at the same place while it fits (see :data:`CUT_SLACK`), so that
prompt caching keeps working on a long conversation.

The model's context window comes from ``GET /v1/models``, asked at most once a session and
only when a request is large enough for the answer to matter (every current model has at
least :data:`FALLBACK_CONTEXT_WINDOW`); when the server can't list models, that is assumed.
Finding it out is the session's job (it holds the client); this module does no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import undated_model_id

if TYPE_CHECKING:
    from .conversation import Exchange
    from .protocol import ModelInfo

FALLBACK_CONTEXT_WINDOW = 200_000
"""The smallest context window of the models in use (1M for current ones, 200K for older)."""
ESTIMATE_MARGIN = 1.3
"""The local estimate counts ~4 characters a token; newer tokenizers count ~30% more."""
IMAGE_LEFT_OUT = "[An image was here; it was left out to fit the context budget.]"


def estimate_tokens(messages: list[dict[str, Any]], system: str | None = None) -> int:
    """A local, deliberately high estimate of the tokens ``messages`` (and ``system``) take."""
    from .dry_run import local_estimate

    return math.ceil(local_estimate({"messages": messages, "system": system}) * ESTIMATE_MARGIN)


def input_limit(budget: int | None, window: int, max_tokens: int) -> int:
    """The most input tokens a request may hold: the budget, within the window less the answer's room."""
    room = window - max_tokens
    return min(budget, room) if budget else room


CUT_SLACK = 0.25
"""A history that overflows is cut this far below the limit (a quarter), and the next questions
cut it at the same place while it fits: they send the same prefix, which stays in the prompt
cache, until the history has grown by that much again. (Cutting one turn at a time would
change the prefix, and miss the cache, on every question.)"""


@dataclass(frozen=True)
class Cut:
    """Where a history was cut, to cut it there again."""

    dropped_through: Exchange | None
    """The newest exchange left out (None: none was)."""
    stripped: frozenset[int] = frozenset()
    """Identities of the exchanges sent without their images."""


@dataclass
class Fitted:
    """The history that fits, what was left out of it, and where it was cut."""

    history: list[Exchange]
    turns_left_out: int = 0
    images_left_out: int = 0
    cut: Cut | None = None

    @property
    def trimmed(self) -> bool:
        return bool(self.turns_left_out or self.images_left_out)

    def messages(self) -> list[dict[str, Any]]:
        return [m for e in self.history for m in e.messages()]

    def size(self) -> int:
        return sum(estimate_tokens(e.messages()) for e in self.history)


def fit_history(history: list[Exchange], fixed: int, limit: int, previous: Cut | None = None) -> Fitted:
    """The newest part of ``history`` that fits in ``limit`` tokens next to ``fixed`` ones (the
    system prompt and the question): cut where ``previous`` cut it if that still fits, else anew."""
    whole = Fitted(list(history))
    if fixed + whole.size() <= limit:
        return whole
    if previous is not None and (again := _cut_again(history, previous)) is not None and fixed + again.size() <= limit:
        return again
    return _cut_anew(history, fixed, int(limit * (1 - CUT_SLACK)))


def _cut_anew(history: list[Exchange], fixed: int, target: int) -> Fitted:
    """Images leave first, oldest first; then the oldest turns; until ``target`` is met."""
    sizes = [estimate_tokens(e.messages()) for e in history]
    total = fixed + sum(sizes)
    fitted = Fitted(list(history))
    stripped: set[int] = set()
    for index, exchange in enumerate(history):
        if total <= target:
            break
        lighter, removed = _without_images(exchange)
        if removed:
            fitted.history[index] = lighter
            fitted.images_left_out += removed
            stripped.add(id(exchange))
            size = estimate_tokens(lighter.messages())
            total -= sizes[index] - size
            sizes[index] = size
    dropped: Exchange | None = None
    while total > target and fitted.history:
        fitted.history.pop(0)
        total -= sizes.pop(0)
        dropped = history[fitted.turns_left_out]
        fitted.images_left_out -= _images(dropped) if id(dropped) in stripped else 0
        fitted.turns_left_out += 1
    fitted.cut = Cut(dropped, frozenset(stripped))
    return fitted


def _cut_again(history: list[Exchange], cut: Cut) -> Fitted | None:
    """``history`` cut where ``cut`` says; None when that place is gone (a cell was re-run)."""
    identities = [id(e) for e in history]
    if cut.dropped_through is not None and id(cut.dropped_through) not in identities:
        return None
    start = identities.index(id(cut.dropped_through)) + 1 if cut.dropped_through is not None else 0
    fitted = Fitted([], turns_left_out=start, cut=cut)
    for exchange in history[start:]:
        if id(exchange) in cut.stripped:
            exchange, removed = _without_images(exchange)
            fitted.images_left_out += removed
        fitted.history.append(exchange)
    return fitted


def _images(exchange: Exchange) -> int:
    return sum(1 for block in [*exchange.question, *exchange.answer] if block.get("type") == "image")


def _without_images(exchange: Exchange) -> tuple[Exchange, int]:
    """A copy of ``exchange`` whose image blocks are replaced by a short note, and how many."""
    from dataclasses import replace

    def strip(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": "text", "text": IMAGE_LEFT_OUT} if block.get("type") == "image" else block for block in blocks]

    return replace(exchange, question=strip(exchange.question), answer=strip(exchange.answer)), _images(exchange)


def left_out_note(turns: int, images: int) -> str:
    """"3 earlier turns not sent", "1 earlier image not sent", or both; "" for none."""
    parts = [f"{n} earlier {what}{'s' if n != 1 else ''}" for n, what in ((turns, "turn"), (images, "image")) if n]
    return f"{' and '.join(parts)} not sent" if parts else ""


@dataclass
class ContextWindows:
    """``max_input_tokens`` per model, learnt from ``/v1/models`` once a session."""

    _windows: dict[str, int] | None = field(default=None)

    def learn(self, models: list[ModelInfo] | None) -> None:
        """Keep the windows the server listed (None: it could not list them; assume from now on)."""
        self._windows = {m.id: m.max_input_tokens for m in models or [] if m.max_input_tokens}

    def of(self, model: str) -> int | None:
        """The context window of ``model``: None until learnt, then the listed one, or
        :data:`FALLBACK_CONTEXT_WINDOW` for a model the server did not list."""
        if self._windows is None:
            return None
        return self._windows.get(model) or self._windows.get(undated_model_id(model)) or FALLBACK_CONTEXT_WINDOW
