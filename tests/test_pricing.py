"""The price table and cost estimates: by hand-checked figures, per request, never a crash."""

from __future__ import annotations

import json

import pytest

from claude_magic.api.accumulate import MessageAccumulator
from claude_magic.api.protocol import parse_event
from claude_magic.core.pricing import PRICES, Tally, TokenUsage, cost, format_cost, price_of
from claude_magic.testing.models import MODELS


def usage(input: int = 0, output: int = 0, write: int = 0, read: int = 0, write_1h: int = 0) -> dict:
    return {
        "input_tokens": input,
        "output_tokens": output,
        "cache_creation_input_tokens": write + write_1h,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": write_1h},
    }


def test_cost_of_a_request_by_hand() -> None:
    # Sonnet 5: $2 in, $10 out, $2.50 5m write, $4 1h write, $0.20 read, per million
    spent = cost("claude-sonnet-5", usage(input=1_000, output=500, write=10_000, read=100_000, write_1h=2_000))
    assert spent == pytest.approx((1_000 * 2 + 500 * 10 + 10_000 * 2.5 + 2_000 * 4 + 100_000 * 0.2) / 1e6)


def test_dated_snapshots_share_their_models_price() -> None:
    assert price_of("claude-haiku-4-5-20251001") is PRICES["claude-haiku-4-5"]
    assert price_of("claude-opus-4-20250514") is PRICES["claude-opus-4"]


def test_unknown_models_cost_unknown_never_crash() -> None:
    assert price_of("claude-future-9") is None and cost("claude-future-9", usage(input=10)) is None
    assert format_cost(None) == "cost unknown"
    tally = Tally()
    tally.add("claude-future-9", usage(input=10, output=5))
    tally.add("claude-sonnet-5", usage(input=1_000_000))
    assert tally.tokens.input == 1_000_010 and tally.requests == 2
    assert tally.cost_text() == "$2.00 + unknown (claude-future-9)"


def test_haiku_5_5_costs_more_above_100k_prompt_tokens() -> None:
    short = cost("claude-haiku-5-5", usage(input=50_000, read=50_000, output=1_000))
    long = cost("claude-haiku-5-5", usage(input=50_000, read=50_001, output=1_000))
    assert short == pytest.approx((50_000 * 0.10 + 50_000 * 0.005 + 1_000 * 0.50) / 1e6)
    assert long == pytest.approx((50_000 * 0.50 + 50_001 * 0.025 + 1_000 * 2.50) / 1e6)


def test_every_model_the_stand_in_serves_has_a_price() -> None:
    assert all(price_of(m["id"]) is not None for m in MODELS)


def test_cache_reads_are_cheaper_than_input_and_writes_dearer_for_every_model() -> None:
    for model, price in PRICES.items():
        rates = price.rates
        assert rates.cache_read < rates.input < rates.cache_write <= rates.cache_write_1h, model


def test_usage_from_message_delta_is_cumulative_not_added() -> None:
    accumulator = MessageAccumulator()
    start = {"type": "message_start", "message": {"id": "m", "model": "claude-sonnet-5", "content": [], "usage": usage(input=40, output=1, read=900)}}
    events = [
        ("message_start", start),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 10}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 25, "input_tokens": 40}}),
    ]
    for name, data in events:
        accumulator.add(parse_event(name, json.dumps(data)))
    tokens = TokenUsage.from_api(accumulator.usage)
    assert (tokens.input, tokens.output, tokens.cache_read) == (40, 25, 900)
    tally = Tally()
    tally.add("claude-sonnet-5", accumulator.usage)
    assert tally.dollars == pytest.approx((40 * 2 + 25 * 10 + 900 * 0.2) / 1e6)
    assert tally.cached_share == pytest.approx(900 / 940)


def test_the_footer_shows_cache_cost_and_what_was_left_out() -> None:
    from claude_magic.core.engine import Answer
    from claude_magic.ui.wording import footer

    priced = Answer("…", "claude-sonnet-5", usage(input=5, output=3, read=1_000, write=20), 0.1, 0.2, images_left_out=1)
    assert footer(priced) == (
        "claude-sonnet-5 · 5 in · 3 out tokens · cache: 1,000 read, 20 written · ≈ $0.0003 · first token 0.10 s · total 0.20 s"
        " · 1 earlier image not sent"
    )
    unknown = Answer("…", "claude-future-9", usage(input=5, output=3), None, 0.2, turns_left_out=3)
    assert footer(unknown) == "claude-future-9 · 5 in · 3 out tokens · cost unknown · total 0.20 s · 3 earlier turns not sent"


def test_web_searches_cost_ten_dollars_a_thousand_on_top_of_tokens() -> None:
    usage = {"input_tokens": 1_000_000, "output_tokens": 0, "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 2}}
    assert cost("claude-sonnet-5-5", usage) == pytest.approx(2.0 + 0.03)
    tally = Tally()
    tally.add("claude-sonnet-5-5", usage)
    tally.add("claude-sonnet-5-5", usage)
    assert tally.tokens.web_searches == 6 and tally.dollars == pytest.approx(4.06)
