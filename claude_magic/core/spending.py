"""What a question may cost before it is sent, and whether it may be sent.

A request's cost is known only once its answer has ended; before, it lies in a range. Its input
is known (counted by the server's ``count_tokens``, or estimated locally as the context budget
estimates), and so is the part of it that prompt caching may hold: the stable prefix up to the
last ``cache_control`` mark. The least it can cost is that prefix read from the cache, the rest
as plain input, and no output; the most, that prefix written to the cache and ``max_tokens`` of
output (thinking included). The most is what a cap holds against, so that no question costs
more than the user agreed to: ``ClaudeMagics.budget_usd`` (what this notebook may spend in all)
and ``ClaudeMagics.confirm_above_usd`` (what one question may cost without asking first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .budget import local_tokens
from .pricing import Tally, TokenUsage, cost, format_cost

if TYPE_CHECKING:
    from .store import ConversationStore, Cursor


@dataclass(frozen=True)
class CostRange:
    """What one request may cost, from the least to the most (None: the model has no price)."""

    model: str
    input_tokens: int
    cacheable_tokens: int
    """Of the input, the prefix prompt caching may read (or write)."""
    max_output: int
    least: float | None
    most: float | None

    @property
    def text(self) -> str:
        if self.least is None or self.most is None:
            return f"cost unknown ({self.model} has no price)"
        return f"{format_cost(self.least)} to {format_cost(self.most)}"


def cost_range(model: str, input_tokens: int, cacheable_tokens: int, max_output: int, max_searches: int = 0, *, batch: bool = False) -> CostRange:
    """The range of what a request of ``input_tokens`` (``cacheable_tokens`` of them a cacheable
    prefix) may cost with at most ``max_output`` output tokens and ``max_searches`` web searches
    (``batch``: in a Message Batch)."""
    cacheable = min(cacheable_tokens, input_tokens)
    plain = input_tokens - cacheable
    least = cost(model, TokenUsage(input=plain, cache_read=cacheable), batch=batch)
    most = cost(model, TokenUsage(input=plain, cache_write=cacheable, output=max_output, web_searches=max_searches), batch=batch)
    return CostRange(model, input_tokens, cacheable, max_output, least, most)


def estimate(model: str, body: Mapping[str, Any], counted: int | None = None, *, batch: bool = False) -> CostRange:
    """The cost range of the request ``body``: its input counted by the server (``counted``), or
    estimated locally as the context budget estimates it (``batch``: sent in a Message Batch)."""
    input_tokens = counted if counted is not None else local_tokens(body.get("messages") or [], body.get("system"))
    cacheable = local_tokens(*cacheable_prefix(body))
    searches = sum(int(t.get("max_uses") or 0) for t in body.get("tools") or [] if t.get("name") == "web_search")
    return cost_range(model, input_tokens, cacheable, int(body.get("max_tokens") or 0), searches, batch=batch)


def cacheable_prefix(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """The messages and system prompt up to the request's last ``cache_control`` mark (none
    marked: nothing is cacheable)."""
    messages: Sequence[dict[str, Any]] = body.get("messages") or []
    for index in range(len(messages) - 1, -1, -1):
        content = messages[index].get("content")
        if isinstance(content, list) and any("cache_control" in block for block in content):
            return list(messages[: index + 1]), body.get("system")
    system = body.get("system")
    if isinstance(system, list) and any("cache_control" in block for block in system):
        return [], system
    return [], None


def combined(ranges: Sequence[CostRange]) -> CostRange:
    """Several requests sent together (``--compare``), as one range."""
    least = [r.least for r in ranges]
    most = [r.most for r in ranges]
    return CostRange(
        ", ".join(dict.fromkeys(r.model for r in ranges)),
        sum(r.input_tokens for r in ranges),
        sum(r.cacheable_tokens for r in ranges),
        sum(r.max_output for r in ranges),
        None if None in least else sum(x for x in least if x is not None),
        None if None in most else sum(x for x in most if x is not None),
    )


# --- what a notebook has spent ------------------------------------------------------------------


def add_logged_usage(tally: Tally, events: Iterable[dict[str, Any]]) -> Tally:
    """Count the requests a notebook's log recorded: each exchange's usage, and each usage event
    (a request no exchange carries: a tool round, a compared answer)."""
    for event in events:
        if event.get("event") in ("exchange", "usage") and not event.get("billed_separately"):
            tally.add(str(event.get("model") or ""), event.get("usage") or {})
    return tally


def notebook_usage(store: ConversationStore) -> Tally:
    """Every request the notebook's log recorded, archived conversations included."""
    return add_logged_usage(Tally(), store.every_event())


@dataclass
class NotebookSpending:
    """What a notebook has spent, kept up to date as its log grows: archives (which never
    change) are read once each, the live log from where the last look ended, so asking under a
    budget costs in proportion to what was logged since, not to the notebook's whole past."""

    store: ConversationStore
    _archives: dict[Path, float] = field(default_factory=dict)
    _live: Tally = field(default_factory=Tally)
    _cursor: Cursor | None = None

    def dollars(self) -> float:
        for path in self.store.archived():
            if path not in self._archives:
                self._archives[path] = add_logged_usage(Tally(), self.store.archived_events(path)).dollars
        tail = self.store.follow(self._cursor, with_images=False)
        if tail.restarted:  # reset: what was live is in an archive now
            self._live = Tally()
        add_logged_usage(self._live, (event for _, event in tail.events))
        self._cursor = tail.cursor
        return sum(self._archives.values()) + self._live.dollars


@dataclass(frozen=True)
class Refused(Exception):
    """A question that was not sent, and why (one line)."""

    why: str

    def __str__(self) -> str:
        return self.why


def budget_shortfall(budget: float | None, spent: float, worst: CostRange) -> str | None:
    """Why spending up to ``worst`` could take the notebook past ``budget``; None when it can't."""
    if budget is None:
        return None
    if worst.most is None:
        return f"{worst.model} has no price, so this notebook's budget of {format_cost(budget)} can't be kept"
    if spent + worst.most > budget:
        left = max(budget - spent, 0.0)
        return f"this notebook's budget of {format_cost(budget)} has {format_cost(left)} left, less than the {format_cost(worst.most)} it could cost"
    return None


def check_budget(budget: float | None, spent: float, worst: CostRange) -> None:
    """Raise :class:`Refused` when spending up to ``worst`` could take the notebook past ``budget``."""
    if (shortfall := budget_shortfall(budget, spent, worst)) is not None:
        remedy = "" if worst.most is None else " (raise ClaudeMagics.budget_usd, or lower --max-tokens)"
        raise Refused(f"{shortfall}; nothing was sent{remedy}")
