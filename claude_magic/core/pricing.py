"""What answers cost: the one price table, token totals, and the estimated cost of a request.

Prices are US dollars per million tokens, from ``../shared/docs/anthropic-protocol.md`` §8
(Anthropic's pricing page and per-model pages, late 2026; third-party figures where the page
gave none). Where a cache rate was not published it is derived with the API's usual
multipliers (5-minute write 1.25× input, 1-hour write 2×, read 0.1×), and marked so below.
A model that is not in the table has no price: its cost is "unknown", never a guess.

Cost is computed per request, from that request's usage, because a price can depend on the
size of the prompt (Haiku 5.5 costs more above 100K prompt tokens), and on how it was asked: a
request of a Message Batch costs half (its usage says ``"service_tier": "batch"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.settings import undated_model_id

PER_MILLION = 1_000_000
WEB_SEARCH_USD = 10 / 1000
"""A web search the API runs costs $10 per 1,000 searches, on top of the tokens its results take
(Anthropic's pricing page); a web fetch costs only the tokens of what it fetched."""
BATCH_DISCOUNT = 0.5
"""What a Message Batch request costs, as a share of the same request asked alone (every token kind)."""


@dataclass(frozen=True)
class Rates:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    """5-minute cache writes (the default TTL)."""
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class Price:
    rates: Rates
    long_prompt: tuple[int, Rates] | None = None
    """Rates that apply instead when the prompt is over this many tokens."""

    def rates_for(self, prompt_tokens: int) -> Rates:
        if self.long_prompt is not None and prompt_tokens > self.long_prompt[0]:
            return self.long_prompt[1]
        return self.rates


def _usual(input: float, output: float, *, cache_read: float | None = None) -> Rates:
    """Rates from the usual multipliers, for models whose cache rates were not published."""
    return Rates(input, output, input * 1.25, input * 2, input * 0.1 if cache_read is None else cache_read)


_FABLE_5_1 = Price(Rates(10, 50, 12.50, 20, 0.25))
_FABLE_5 = Price(Rates(10, 50, 12.50, 20, 1.00))
_OPUS_5 = Price(Rates(5, 25, 6.25, 10, 0.50))
_OPUS_4 = Price(Rates(15, 75, 18.75, 30, 1.50))
_SONNET_4 = Price(Rates(3, 15, 3.75, 6, 0.30))

PRICES: dict[str, Price] = {
    # Fable 5.2: input and output published, cache rates derived (usual multipliers).
    "claude-fable-5-2": Price(_usual(8, 40)),
    "claude-fable-5-1": _FABLE_5_1,
    "claude-mythos-5-1": _FABLE_5_1,
    "claude-fable-5": _FABLE_5,
    "claude-mythos-5": _FABLE_5,
    "claude-opus-5-5": Price(Rates(4, 20, 5, 8, 0.20)),
    "claude-opus-5": _OPUS_5,
    "claude-opus-4-8": _OPUS_5,
    "claude-opus-4-7": _OPUS_5,
    "claude-opus-4-6": _OPUS_5,
    "claude-opus-4-5": _OPUS_5,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    # Sonnet 5.5: cache reads ~0.05× input (third-party figure), writes derived.
    "claude-sonnet-5-5": Price(_usual(2, 10, cache_read=0.10)),
    "claude-sonnet-5": Price(Rates(2, 10, 2.50, 4, 0.20)),
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    # Haiku 5.5: two tiers by prompt size; cache reads derived at the 5.5 generation's 0.05×,
    # and the long tier's 1-hour write at the usual 2×.
    "claude-haiku-5-5": Price(
        Rates(0.10, 0.50, 0.125, 0.20, 0.005),
        long_prompt=(100_000, Rates(0.50, 2.50, 0.625, 1.00, 0.025)),
    ),
    "claude-haiku-4-5": Price(Rates(1, 5, 1.25, 2, 0.10)),
}

def price_of(model: str) -> Price | None:
    """The price of a model id or of a dated snapshot of it (``claude-haiku-4-5-20251001``)."""
    return PRICES.get(model) or PRICES.get(undated_model_id(model))


@dataclass
class TokenUsage:
    """Token counts by kind, as the API bills them."""

    input: int = 0
    """Input tokens neither written to nor read from the cache."""
    output: int = 0
    cache_write: int = 0
    """Tokens written to the cache with the 5-minute TTL."""
    cache_write_1h: int = 0
    cache_read: int = 0
    web_searches: int = 0
    """Searches the API ran for the request (``usage.server_tool_use.web_search_requests``)."""

    @classmethod
    def from_api(cls, usage: Mapping[str, Any]) -> TokenUsage:
        """From a response's ``usage`` (the final, cumulative one)."""
        written = usage.get("cache_creation_input_tokens") or 0
        breakdown = usage.get("cache_creation") or {}
        one_hour = min(breakdown.get("ephemeral_1h_input_tokens") or 0, written)
        return cls(
            input=usage.get("input_tokens") or 0,
            output=usage.get("output_tokens") or 0,
            cache_write=written - one_hour,
            cache_write_1h=one_hour,
            cache_read=usage.get("cache_read_input_tokens") or 0,
            web_searches=(usage.get("server_tool_use") or {}).get("web_search_requests") or 0,
        )

    @property
    def written(self) -> int:
        return self.cache_write + self.cache_write_1h

    @property
    def prompt(self) -> int:
        """Every input token of the request: uncached, written and read."""
        return self.input + self.written + self.cache_read

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input + other.input,
            self.output + other.output,
            self.cache_write + other.cache_write,
            self.cache_write_1h + other.cache_write_1h,
            self.cache_read + other.cache_read,
            self.web_searches + other.web_searches,
        )


def cost(model: str, usage: Mapping[str, Any] | TokenUsage, *, batch: bool | None = None) -> float | None:
    """The estimated cost in USD of one request (its web searches included), or None for a model
    with no price. ``batch``: asked in a Message Batch (half price); None: as a response's
    ``usage`` says."""
    price = price_of(model)
    if price is None:
        return None
    if batch is None:
        batch = in_batch(usage)
    tokens = usage if isinstance(usage, TokenUsage) else TokenUsage.from_api(usage)
    rates = price.rates_for(tokens.prompt)
    full = (
        tokens.input * rates.input
        + tokens.output * rates.output
        + tokens.cache_write * rates.cache_write
        + tokens.cache_write_1h * rates.cache_write_1h
        + tokens.cache_read * rates.cache_read
    ) / PER_MILLION
    return (full * BATCH_DISCOUNT if batch else full) + tokens.web_searches * WEB_SEARCH_USD


def in_batch(usage: Mapping[str, Any] | TokenUsage) -> bool:
    """A response's ``usage`` from a request of a Message Batch (``service_tier``)."""
    return not isinstance(usage, TokenUsage) and usage.get("service_tier") == "batch"


def format_cost(dollars: float | None) -> str:
    if dollars is None:
        return "cost unknown"
    return f"${dollars:.4f}" if dollars < 1 else f"${dollars:,.2f}"


@dataclass
class Tally:
    """Running totals over many requests: tokens, and the cost of those that have a price."""

    tokens: TokenUsage = field(default_factory=TokenUsage)
    dollars: float = 0.0
    requests: int = 0
    unpriced: set[str] = field(default_factory=set)
    """Models used whose price is unknown (their tokens count, their cost does not)."""

    def add(self, model: str, usage: Mapping[str, Any]) -> None:
        """Count one request (one without usage, which never started, counts nothing)."""
        if not usage:
            return
        tokens = TokenUsage.from_api(usage)
        self.tokens = self.tokens + tokens
        self.requests += 1
        spent = cost(model, tokens, batch=in_batch(usage))
        if spent is None:
            self.unpriced.add(model)
        else:
            self.dollars += spent

    def cost_text(self) -> str:
        if not self.unpriced:
            return format_cost(self.dollars)
        unknown = ", ".join(sorted(self.unpriced))
        if self.dollars:
            return f"{format_cost(self.dollars)} + unknown ({unknown})"
        return f"unknown ({unknown})"

    @property
    def cached_share(self) -> float:
        """The share of input tokens read from the cache."""
        return self.tokens.cache_read / self.tokens.prompt if self.tokens.prompt else 0.0
