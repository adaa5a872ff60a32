"""The context budget: how much of the history a question can take along.

Before a request is sent its size is estimated locally (no round trip): about four characters
a token for text, width × height / 750 for an image, plus a margin because newer models'
tokenizer counts about 30% more tokens for the same text, 2,000 for a page of PDF; and,
because the API limits them too, its bytes (32 MB a request), its images (100 for the models
with the smallest windows) and its PDF pages (100). When the history would push the request past a limit (the configured budget, or
the model's context window less ``max_tokens``; the bytes; the images) the oldest images are
left out first, then the oldest turns, and the answer's footer says so. The current question
is always sent whole. The history is cut with room to spare and then cut at the same place
while it fits (see :data:`CUT_SLACK`), so that prompt caching keeps working on a long
conversation.

Each exchange is measured once (:func:`size_of`): the history is fitted again before every
question, and serialising all of it each time made every question cost more than the last.

The model's context window comes from ``GET /v1/models``, asked at most once a session and
only when a request is large enough for the answer to matter (every current model has at
least :data:`FALLBACK_CONTEXT_WINDOW`); when the server can't list models, that is assumed.
Finding it out is the session's job (it holds the client); this module does no I/O.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..api.media import MAX_IMAGES_PER_REQUEST, image_size
from ..api.pdf import MAX_PDF_PAGES, PAGE_TOKENS, base64_page_count
from ..api.settings import MAX_REQUEST_BYTES, undated_model_id
from .image_blocks import base64_data, pdf_data

if TYPE_CHECKING:
    from ..api.protocol import ModelInfo
    from .conversation import Exchange

FALLBACK_CONTEXT_WINDOW = 200_000
"""The smallest context window of the models in use (1M for current ones, 200K for older)."""
ESTIMATE_MARGIN = 1.3
"""The local estimate counts ~4 characters a token; newer tokenizers count ~30% more."""
IMAGE_LEFT_OUT = "[An image was here; it was left out to fit the context budget.]"
UNCOUNTED_BYTES = 500_000
"""Room left for what the bytes counted leave out: tool definitions, tool rounds, the request's other fields."""
MESSAGE_BYTES = 40
"""JSON around a message's content: ``{"role":"assistant","content":[…]}`` and a comma."""


@dataclass(frozen=True)
class Size:
    """What (part of) a request takes: estimated tokens, bytes of JSON, images."""

    tokens: int = 0
    bytes: int = 0
    images: int = 0
    pages: int = 0
    """PDF pages (of documents sent as base64)."""

    def __add__(self, other: Size) -> Size:
        return Size(self.tokens + other.tokens, self.bytes + other.bytes, self.images + other.images, self.pages + other.pages)

    def __sub__(self, other: Size) -> Size:
        return Size(self.tokens - other.tokens, self.bytes - other.bytes, self.images - other.images, self.pages - other.pages)

    def within(self, limit: Limit) -> bool:
        return self.tokens <= limit.tokens and self.bytes <= limit.bytes and self.images <= limit.images and self.pages <= limit.pages


@dataclass(frozen=True)
class Limit:
    """The most a request may hold: input tokens (the budget, or the window), bytes, images, PDF pages."""

    tokens: int
    bytes: int = MAX_REQUEST_BYTES - UNCOUNTED_BYTES
    images: int = MAX_IMAGES_PER_REQUEST
    pages: int = MAX_PDF_PAGES

    def with_slack(self) -> Limit:
        """Where a cut aims: :data:`CUT_SLACK` below this limit (PDF pages: the limit itself, a
        document being many pages at once)."""
        keep = 1 - CUT_SLACK
        return Limit(int(self.tokens * keep), int(self.bytes * keep), int(self.images * keep), self.pages)


def measure(messages: list[dict[str, Any]], system: str | list[dict[str, Any]] | None = None) -> Size:
    """The size of ``messages`` (and ``system``): tokens deliberately high (see :func:`local_tokens`)."""
    counted = _count(messages, system)
    return replace(counted, tokens=math.ceil(counted.tokens * ESTIMATE_MARGIN))


def local_tokens(messages: list[dict[str, Any]], system: str | list[dict[str, Any]] | None = None) -> int:
    """About four characters a token for text (blocks as JSON), width × height / 750 for an image,
    2,000 a page of PDF."""
    return _count(messages, system).tokens


def _count(messages: list[dict[str, Any]], system: str | list[dict[str, Any]] | None) -> Size:
    """Tokens (without the margin), bytes and images; an image's base64 is counted, never serialised."""
    characters, image_tokens, size, images = len(json.dumps(system or "")), 0, MESSAGE_BYTES * len(messages), 0
    size += _utf8_length(json.dumps(system or "", ensure_ascii=False))
    pages = 0
    for block in _blocks(messages):
        images += block.get("type") == "image"
        data = base64_data(block)
        if data is None and (data := pdf_data(block)) is not None:
            pages += base64_page_count(data)
            image_tokens += base64_page_count(data) * PAGE_TOKENS
            size += len(data) + len(json.dumps({**block, "source": {**block["source"], "data": ""}}))
        elif data is not None:
            width, height = image_size(data)
            image_tokens += width * height // 750
            size += len(data) + len(json.dumps({**block, "source": {**block["source"], "data": ""}}))
        else:
            text = json.dumps(block, ensure_ascii=False)
            characters += len(text)
            size += _utf8_length(text)
    return Size(characters // 4 + image_tokens, size, images, pages)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _blocks(messages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for message in messages:
        content = message.get("content")
        yield from [{"type": "text", "text": content}] if isinstance(content, str) else content or []


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

    def size(self) -> Size:
        return sum(map(size_of, self.history), Size())


def fit_history(history: list[Exchange], fixed: Size, limit: Limit, previous: Cut | None = None) -> Fitted:
    """The newest part of ``history`` that fits in ``limit`` next to ``fixed`` (the system
    prompt and the question): cut where ``previous`` cut it if that still fits, else anew."""
    whole = Fitted(list(history))
    if (fixed + whole.size()).within(limit):
        return whole
    if previous is not None and (again := _cut_again(history, previous)) is not None and (fixed + again.size()).within(limit):
        return again
    return _cut_anew(history, fixed, limit.with_slack())


def _cut_anew(history: list[Exchange], fixed: Size, target: Limit) -> Fitted:
    """Images leave first, oldest first; then the oldest turns; until ``target`` is met."""
    sizes = [size_of(e) for e in history]
    total = sum(sizes, fixed)
    fitted = Fitted(list(history))
    stripped: set[int] = set()
    for index, exchange in enumerate(history):
        if total.within(target):
            break
        lighter, removed = without_images(exchange)
        if removed:
            fitted.history[index] = lighter
            fitted.images_left_out += removed
            stripped.add(id(exchange))
            total += size_of(lighter) - sizes[index]
            sizes[index] = size_of(lighter)
    dropped: Exchange | None = None
    while not total.within(target) and fitted.history:
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
            exchange, removed = without_images(exchange)
            fitted.images_left_out += removed
        fitted.history.append(exchange)
    return fitted


def _images(exchange: Exchange) -> int:
    return sum(1 for block in [*exchange.question, *exchange.answer] if block.get("type") == "image")


def size_of(exchange: Exchange) -> Size:
    """The size of ``exchange`` in a request, measured once (see :class:`_Measured`)."""
    return _measured(exchange).size


def without_images(exchange: Exchange) -> tuple[Exchange, int]:
    """A copy of ``exchange`` whose image blocks are replaced by a short note, and how many
    (the same copy each time, so that its size is measured once too)."""
    measured = _measured(exchange)
    if measured.without_images is None:

        def strip(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{"type": "text", "text": IMAGE_LEFT_OUT} if block.get("type") == "image" else block for block in blocks]

        lighter = replace(exchange, question=strip(exchange.question), answer=strip(exchange.answer))
        measured.without_images = (lighter, _images(exchange))
    return measured.without_images


@dataclass
class _Measured:
    """What is known of one exchange: its size, and its copy without images once made."""

    version: tuple[int, ...]
    size: Size
    without_images: tuple[Exchange, int] | None = None


_MEASURED: dict[int, tuple[weakref.ref[Exchange], _Measured]] = {}
"""By the exchange's identity, forgotten with the exchange. Exchanges are not edited once
recorded, but they could be: one whose lists were replaced or grown is measured again."""


def _measured(exchange: Exchange) -> _Measured:
    key, version = id(exchange), _version(exchange)
    known = _MEASURED.get(key)
    if known is not None and known[0]() is exchange and known[1].version == version:
        return known[1]
    measured = _Measured(version, measure(exchange.messages()))
    _MEASURED[key] = (weakref.ref(exchange, partial(_forget, key)), measured)
    return measured


def _forget(key: int, _: object) -> None:
    _MEASURED.pop(key, None)


def _version(exchange: Exchange) -> tuple[int, ...]:
    return tuple(n for blocks in (exchange.question, exchange.answer, exchange.steps) for n in (id(blocks), len(blocks)))


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
