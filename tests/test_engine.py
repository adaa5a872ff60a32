"""The turn engine without a network or a kernel: httpx's MockTransport stands for the API
(the session's transport seam), and each test reads what the turn showed, tallied and recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core import engine
from claude_magic.core.conversation import Exchange
from claude_magic.core.session import AskOptions, ClaudeSession
from claude_magic.core.spending import notebook_usage
from claude_magic.core.tools import tool_from

SETTINGS = ClientSettings(credentials=Credentials(api_key="sk-ant-engine-test-key-000000"), base_url="https://api.example")


def sse(*blocks: dict[str, Any], stop_reason: str = "end_turn", output_tokens: int = 7) -> bytes:
    """The stream of a message whose content is ``blocks`` (text in one delta each)."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5", "content": [], "stop_reason": None, "usage": {"input_tokens": 11, "output_tokens": 1}}}
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            events += [
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": block["text"]}},
            ]
        else:
            events.append({"type": "content_block_start", "index": index, "content_block": block})
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


class API:
    """Answers each ``POST /v1/messages`` with the next scripted stream, and keeps the bodies."""

    def __init__(self, *streams: bytes) -> None:
        self.streams = list(streams)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.read()))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=self.streams.pop(0))


class Shown:
    def __init__(self) -> None:
        self.finished: list[str] = []

    def feed(self, text: str) -> None: ...

    def feed_thinking(self, text: str) -> None: ...

    def finish(self, text: str) -> None:
        self.finished.append(text)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLAUDE_MAGIC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def session_for(api: API, notebook: str = "/work/engine.ipynb") -> ClaudeSession:
    return ClaudeSession(lambda: notebook, transport=httpx.MockTransport(api), async_transport=httpx.MockTransport(api))


def area(w: int, h: int) -> int:
    """The area of a rectangle."""
    return w * h


def question(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def test_a_tool_round_shows_each_rounds_text_whole_runs_the_tool_and_counts_every_request() -> None:
    api = API(
        sse({"type": "text", "text": "I'll use the tool `area`."}, {"type": "tool_use", "id": "toolu_1", "name": "area", "input": {"w": 2, "h": 3}}, stop_reason="tool_use"),
        sse({"type": "text", "text": "The area is 6."}),
    )
    session, shown = session_for(api), Shown()
    options = AskOptions(model="claude-sonnet-5-5", max_tokens=100, tools=(tool_from("area", area),))
    answer = engine.ask(session, question("How big?"), options, SETTINGS, lambda: shown)
    assert shown.finished == ["I'll use the tool `area`.", "The area is 6."]
    assert api.bodies[1]["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "6"}]
    assert answer.text == "The area is 6." and session.usage.requests == 2
    [exchange] = session.conversation.exchanges
    assert [m["role"] for m in exchange.messages()] == ["user", "assistant", "user", "assistant"]
    assert notebook_usage(session.conversation.store).requests == 2  # the tool round's request is in the log too


def test_an_unrecorded_answer_is_counted_but_not_kept() -> None:
    api = API(sse({"type": "text", "text": "One of several."}))
    session = session_for(api)

    async def compare_column() -> None:
        await engine.ask_async(session, question("Which?"), AskOptions(model="claude-sonnet-5-5", max_tokens=100), SETTINGS, Shown, record=False)
        await session.release_async_client()

    asyncio.run(compare_column())
    assert len(session.conversation) == 0 and session.usage.requests == 1
    assert notebook_usage(session.conversation.store).requests == 1
    session.conversation.record(Exchange(question("Which?"), [{"type": "text", "text": "One of several."}], usage={"output_tokens": 7}, billed_separately=True))
    assert notebook_usage(session.conversation.store).requests == 1  # kept later: counted once


def test_a_cached_answer_needs_no_request_and_costs_nothing() -> None:
    api = API(sse({"type": "text", "text": "Cached, later."}))
    first, second = session_for(api, "/work/a.ipynb"), session_for(api, "/work/b.ipynb")
    options = AskOptions(model="claude-sonnet-5-5", max_tokens=100, cached=True, use_history=False)
    assert engine.ask(first, question("Same?"), options, SETTINGS, Shown).cached_at is None
    again = engine.ask(second, question("Same?"), options, SETTINGS, Shown)
    assert again.cached_at is not None and again.text == "Cached, later."
    assert len(api.bodies) == 1 and second.usage.requests == 0


def test_while_the_jupyter_servers_proxy_queues_the_request_the_answer_says_it_waits() -> None:
    waits = [f"event: claude_magic_rate_limit_wait\ndata: {json.dumps({'type': 'claude_magic_rate_limit_wait', 'waited': n})}\n\n".encode() for n in (1.0, 2.1)]
    api = API(b"".join(waits) + sse({"type": "text", "text": "After the wait."}))
    shown: list[str] = []

    class Waiting(Shown):
        def waiting(self, waited: float) -> None:
            shown.append(f"waiting {waited:g}")

        def feed(self, text: str) -> None:
            shown.append(text)

    answer = engine.ask(session_for(api), question("hi"), AskOptions(model="claude-sonnet-5-5", max_tokens=50), SETTINGS, Waiting)
    assert answer.text == "After the wait." and shown == ["waiting 1", "waiting 2.1", "After the wait."]


def test_a_proxy_that_holds_the_key_needs_no_credentials() -> None:
    class NoKey(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Any:
            yield request

    api = API(sse({"type": "text", "text": "Through the proxy."}))
    session = ClaudeSession(transport=httpx.MockTransport(api), auth=NoKey())
    keyless = ClientSettings(credentials=Credentials(), base_url="https://proxy.example")
    assert engine.ask(session, question("hi"), AskOptions(model="claude-sonnet-5-5", max_tokens=50, use_history=False), keyless, Shown).text == "Through the proxy."
