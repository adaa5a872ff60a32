"""Prompt caching: where the breakpoints go, what the stand-in reports for them, and what a
10-turn conversation reads from the cache, end to end through a session and the stand-in."""

from __future__ import annotations

import copy
from typing import Any

from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core import caching, engine
from claude_magic.core.conversation import CellRun
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.testing import StandIn
from claude_magic.testing.cache import PromptCache, input_tokens
from claude_magic.testing.pytest_plugin import STAND_IN_KEY

EPHEMERAL = {"type": "ephemeral"}
LONG_SYSTEM = "You are a careful data analyst. " * 200


def text(t: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": t, **extra}


def history(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [m for q, a in pairs for m in ({"role": "user", "content": [text(q)]}, {"role": "assistant", "content": [text(a)]})]


def marks(messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(i, j) for i, m in enumerate(messages) for j, b in enumerate(m["content"]) if "cache_control" in b]


# --- placement ------------------------------------------------------------------------------------


def test_the_previous_answer_is_the_breakpoint_and_the_history_is_not_changed() -> None:
    earlier = history(("q1", "a1"), ("q2", "a2"))
    kept = copy.deepcopy(earlier)
    system, messages = caching.mark("Be brief.", earlier, [text("q3")])
    assert marks(messages) == [(3, 0)] and messages[3]["content"][0]["cache_control"] == EPHEMERAL
    assert system == "Be brief."  # too short to cache alone: stays the plain string
    assert earlier == kept


def test_a_long_system_prompt_is_a_breakpoint_of_its_own() -> None:
    system, messages = caching.mark(LONG_SYSTEM, [], [text("q1")])
    assert system == [text(LONG_SYSTEM, cache_control=EPHEMERAL)] and marks(messages) == []


def test_thinking_blocks_never_carry_a_breakpoint() -> None:
    earlier = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": [text("a1"), {"type": "thinking", "thinking": "hm", "signature": "s"}]}]
    _, messages = caching.mark(None, earlier, [text("q2")])
    assert marks(messages) == [(1, 0)]


def test_old_breakpoints_go_and_marked_attachments_count_against_the_limit() -> None:
    earlier = [{"role": "user", "content": [text("old", cache_control=EPHEMERAL)]}, {"role": "assistant", "content": [text("a1")]}]
    attached = [text(f"attachment {i}", cache_control=EPHEMERAL) for i in range(3)] + [text("q2")]
    system, messages = caching.mark(LONG_SYSTEM, earlier, attached)
    assert marks(messages) == [(1, 0), (2, 0), (2, 1), (2, 2)]  # 4: the history's end, the attachments'
    assert isinstance(system, str)  # no room left for the system prompt


# --- the stand-in's cache ------------------------------------------------------------------------------


def body(messages: list[dict[str, Any]], system: Any = None, model: str = "claude-sonnet-5-5") -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": messages, **({"system": system} if system else {})}


def test_a_prefix_seen_before_is_read_and_the_rest_written() -> None:
    cache = PromptCache()
    first = body(caching.mark(None, history(("q1", "a1")), [text("q2")])[1])
    used = cache.usage("claude-sonnet-5-5", first)
    assert used["cache_read_input_tokens"] == 0 and used["cache_creation_input_tokens"] > 0
    assert used["input_tokens"] + used["cache_creation_input_tokens"] == input_tokens(first)
    second = body(caching.mark(None, history(("q1", "a1"), ("q2", "a2")), [text("q3")])[1])
    again = cache.usage("claude-sonnet-5-5", second)
    assert again["cache_read_input_tokens"] == used["cache_creation_input_tokens"]  # q1 a1, as written before
    assert sum(again[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")) == input_tokens(second)
    assert cache.usage("claude-opus-5-5", second)["cache_read_input_tokens"] == 0  # caches are per model


def test_no_breakpoint_no_caching_and_a_changed_prefix_misses() -> None:
    cache = PromptCache()
    plain = body(history(("q1", "a1")) + [{"role": "user", "content": "q2"}])
    used = cache.usage("m", plain)
    assert used["input_tokens"] == input_tokens(plain) and used["cache_read_input_tokens"] == used["cache_creation_input_tokens"] == 0
    cache.usage("m", body(caching.mark(None, history(("q1", "a1")), [text("q2")])[1]))
    edited = body(caching.mark(None, history(("q1 edited", "a1"), ("q2", "a2")), [text("q3")])[1])
    assert cache.usage("m", edited)["cache_read_input_tokens"] == 0


def test_one_hour_breakpoints_are_reported_apart() -> None:
    system = [text(LONG_SYSTEM, cache_control={"type": "ephemeral", "ttl": "1h"})]
    used = PromptCache().usage("m", body([{"role": "user", "content": "hi"}], system=system))
    assert used["cache_creation"]["ephemeral_1h_input_tokens"] == used["cache_creation_input_tokens"] > 0


def test_the_stand_in_rejects_what_the_api_rejects(stand_in: StandIn) -> None:
    import httpx

    headers = {"x-api-key": STAND_IN_KEY, "anthropic-version": "2023-06-01"}
    five = [{"role": "user", "content": [text(str(i), cache_control=EPHEMERAL) for i in range(5)]}]
    thinking = history(("q", "a")) + [{"role": "user", "content": "q2"}]
    thinking[1]["content"] = [{"type": "thinking", "thinking": "t", "signature": "s", "cache_control": EPHEMERAL}, text("a")]
    for messages, expected in ((five, "A maximum of 4 blocks"), (thinking, "thinking.cache_control")):
        response = httpx.post(f"{stand_in.base_url}/v1/messages", json=body(messages), headers=headers)
        assert response.status_code == 400 and expected in response.json()["error"]["message"]


# --- ten turns, end to end ---------------------------------------------------------------------------


class Quiet:
    def feed(self, text: str) -> None:
        pass

    def finish(self, text: str) -> None:
        pass


def converse(server: StandIn, turns: int, *, caching_on: bool) -> ClaudeSession:
    session = ClaudeSession()
    session.prompt_caching = caching_on
    settings = ClientSettings(credentials=Credentials(api_key=STAND_IN_KEY), base_url=server.base_url)
    options = AskOptions(model="claude-sonnet-5-5", max_tokens=1024, system=LONG_SYSTEM)
    for n in range(1, turns + 1):
        engine.ask(session, [text(f"Question {n}: how do the regions compare this month? [[words=120]]")], options, settings, Quiet, CellRun(f"cell-{n}", n, n))
    return session


def test_a_ten_turn_conversation_reads_most_of_its_input_from_the_cache(shared_stand_in: StandIn) -> None:
    turns = 10
    stand_in = shared_stand_in
    cached = converse(stand_in, turns, caching_on=True)
    requests = stand_in.message_requests
    for n, request in enumerate(requests[1:], 2):  # each request marks the previous answer
        assert marks(request.messages) == [(2 * n - 3, 0)]
        assert request.body["system"][0]["cache_control"] == EPHEMERAL
    stand_in.reset()
    uncached = converse(stand_in, turns, caching_on=False)
    assert all("cache_control" not in str(r.body) for r in stand_in.message_requests)
    assert uncached.usage.tokens.cache_read == 0 and uncached.usage.tokens.prompt == cached.usage.tokens.prompt
    assert cached.usage.cached_share > 0.8
    assert cached.usage.dollars < 0.5 * uncached.usage.dollars
    print(f"\n{turns} turns: {cached.usage.cached_share:.0%} of input read from the cache; "
          f"${cached.usage.dollars:.4f} with caching, ${uncached.usage.dollars:.4f} without")
