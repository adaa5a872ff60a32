"""The httpx client against real HTTP servers on 127.0.0.1: the stand-in, and a loopback
server replaying recorded streams byte for byte."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import json
import math
import random
import re
import socket
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from claude_magic.api.accumulate import MessageAccumulator
from claude_magic.api.client import AsyncClient, Client
from claude_magic.api.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ClaudeError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    StreamInterrupted,
    UnexpectedResponseError,
)
from claude_magic.api.protocol import (
    ContentBlockDeltaEvent,
    Message,
    MessageParam,
    MessageRequest,
    OtherEvent,
    ServerToolUseBlock,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
)
from claude_magic.api.retries import backoff, retry_delay, server_retry_after, should_retry
from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.testing import Fault, StandIn
from claude_magic.testing.answers import answer_for, split_into_deltas
from claude_magic.testing.models import MODELS
from claude_magic.testing.pytest_plugin import STAND_IN_KEY

REQUEST_ID = re.compile(r"^req_standin_\d{6}$")
FAST_RETRY_MS = 1.0
"""A ``retry-after-ms`` that keeps retry tests quick without leaving the server's word."""


# --- helpers ---------------------------------------------------------------------------------


def request(prompt: str = "What is a left join?", *, model: str = "claude-sonnet-5-5", **fields: Any) -> MessageRequest:
    return MessageRequest(model=model, max_tokens=1024, messages=[MessageParam(role="user", content=prompt)], **fields)


def settings_for(base_url: str, *, api_key: str = STAND_IN_KEY, max_retries: int = 0, **changes: Any) -> ClientSettings:
    return ClientSettings(
        credentials=Credentials(api_key=api_key), base_url=base_url, max_retries=max_retries, **changes
    )


@dataclass
class Outcome:
    """What consuming one stream gave: the events, the answer so far, and the error if any."""

    events: list[StreamEvent] = field(default_factory=list)
    accumulator: MessageAccumulator | None = None
    request_id: str | None = None
    error: ClaudeError | None = None

    @property
    def text(self) -> str:
        assert self.accumulator is not None, self.error
        return self.accumulator.text


def stream_sync(settings: ClientSettings, req: MessageRequest) -> Outcome:
    outcome = Outcome()
    with Client(settings) as client:
        try:
            with client.stream(req) as stream:
                outcome.accumulator, outcome.request_id = stream.accumulator, stream.request_id
                for event in stream:
                    outcome.events.append(event)
        except ClaudeError as exc:
            outcome.error = exc
    return outcome


async def _stream_async(settings: ClientSettings, req: MessageRequest) -> Outcome:
    outcome = Outcome()
    async with AsyncClient(settings) as client:
        try:
            async with client.stream(req) as stream:
                outcome.accumulator, outcome.request_id = stream.accumulator, stream.request_id
                async for event in stream:
                    outcome.events.append(event)
        except ClaudeError as exc:
            outcome.error = exc
    return outcome


def stream(flavour: str, settings: ClientSettings, req: MessageRequest) -> Outcome:
    """Consume one stream with :class:`Client` (``sync``) or :class:`AsyncClient` (``async``)."""
    return stream_sync(settings, req) if flavour == "sync" else asyncio.run(_stream_async(settings, req))


def call(flavour: str, settings: ClientSettings, method: str, *args: Any) -> Any:
    """``client.<method>(*args)`` on a fresh client of the flavour."""
    if flavour == "sync":
        with Client(settings) as client:
            return getattr(client, method)(*args)

    async def run() -> Any:
        async with AsyncClient(settings) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(run())


@pytest.fixture
def server(shared_stand_in: StandIn) -> StandIn:
    """The session's stand-in, reset for this test (see conftest)."""
    return shared_stand_in


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def deltas_sent(server: StandIn, count: int | None = None) -> str:
    """The text of the first ``count`` deltas the stand-in streams for its last request."""
    return "".join(split_into_deltas(answer_for(server.message_requests[-1].body))[:count])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a reference reading of recorded streams --------------------------------------------------


@dataclass
class Reference:
    """What a stream holds, read with nothing but ``str.split`` and ``json.loads``."""

    events: list[dict[str, Any]]

    @classmethod
    def parse(cls, raw: bytes) -> Reference:
        text = raw.decode().replace("\r\n", "\n").replace("\r", "\n")
        events = []
        for block in text.split("\n\n"):
            data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
            if data:
                events.append(json.loads("\n".join(data)))
        return cls(events)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def block_starts(self) -> dict[int, dict[str, Any]]:
        return {e["index"]: e["content_block"] for e in self.of_type("content_block_start")}

    def deltas(self, index: int, kind: str) -> list[dict[str, Any]]:
        return [
            e["delta"]
            for e in self.of_type("content_block_delta")
            if e["index"] == index and e["delta"]["type"] == kind
        ]

    @property
    def text(self) -> str:
        return "".join(
            block.get("text", "") + "".join(d["text"] for d in self.deltas(index, "text_delta"))
            for index, block in sorted(self.block_starts().items())
            if block["type"] == "text"
        )

    @property
    def usage(self) -> dict[str, Any]:
        """``message_start`` usage, each field a ``message_delta`` carries overwriting it."""
        usage = {k: v for k, v in self.of_type("message_start")[0]["message"]["usage"].items() if v is not None}
        for event in self.of_type("message_delta"):
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
        return usage

    @property
    def stop_reason(self) -> str | None:
        return self.of_type("message_delta")[-1]["delta"]["stop_reason"]


def sse(data: dict[str, Any], name: str | None = None) -> bytes:
    """One event as the API frames it."""
    return f"event: {name or data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def synthetic_stream(pieces: list[str], *, stop: bool = True, extra: dict[int, bytes] | None = None) -> bytes:
    """A one-text-block stream; ``extra`` inserts raw events before the event at that position."""
    usage = {"input_tokens": 10, "output_tokens": 1}
    events = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_x",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "usage": usage,
                },
            }
        ),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        *(sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}) for p in pieces),
    ]
    if stop:
        events += [
            sse({"type": "content_block_stop", "index": 0}),
            sse(
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": len(pieces)}}
            ),
            sse({"type": "message_stop"}),
        ]
    for position, raw in sorted((extra or {}).items(), reverse=True):
        events.insert(position, raw)
    return b"".join(events)


# --- recorded streams replayed -----------------------------------------------------------------

VARIANTS = {
    "whole": ({}, lambda raw: raw),
    "bytewise": ({"chunk_size": 1}, lambda raw: raw),
    "crlf": ({"chunk_size": 97}, lambda raw: raw.replace(b"\n", b"\r\n")),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_recorded_stream_decodes_to_what_it_holds(loopback: Any, sse_fixture: Path, variant: str, flavour: str) -> None:
    raw = sse_fixture.read_bytes()
    options, transform = VARIANTS[variant]
    loopback.serve(transform(raw), **options)
    expected = Reference.parse(raw)

    outcome = stream(flavour, settings_for(loopback.base_url), request())

    assert outcome.error is None
    assert outcome.accumulator is not None and outcome.accumulator.complete
    assert [e.type for e in outcome.events] == [e["type"] for e in expected.events]
    assert outcome.text == expected.text
    assert outcome.accumulator.message().text == expected.text
    assert outcome.accumulator.usage == expected.usage
    assert outcome.accumulator.stop_reason == expected.stop_reason
    assert len(loopback.requests) == 1


def replay(loopback: Any, path: Path) -> tuple[Message, MessageAccumulator, Reference]:
    raw = path.read_bytes()
    loopback.serve(raw, chunk_size=1024)
    outcome = stream_sync(settings_for(loopback.base_url), request())
    assert outcome.error is None and outcome.accumulator is not None
    return outcome.accumulator.message(), outcome.accumulator, Reference.parse(raw)


def test_basic_response_facts(loopback: Any, sse_fixtures_dir: Path) -> None:
    message, acc, _ = replay(loopback, sse_fixtures_dir / "anthropic-sdk-python__test_messages__basic_response.sse")
    assert acc.text == message.text == "Hello there!"
    assert message.usage.output_tokens == 6
    assert message.usage.input_tokens == 11
    assert (message.id, message.model, message.stop_reason) == (
        "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK",
        "claude-3-opus-latest",
        "end_turn",
    )


def test_pause_turn_usage_is_overwritten_never_added(loopback: Any, sse_fixtures_dir: Path) -> None:
    path = sse_fixtures_dir / "pydantic-ai__test_anthropic__test_pause_turn_web_search_streaming_vcr__interaction0.sse"
    message, acc, ref = replay(loopback, path)
    assert ref.of_type("message_start")[0]["message"]["usage"]["input_tokens"] == 2479
    assert acc.usage["input_tokens"] == message.usage.input_tokens == 404500
    assert message.usage.output_tokens == 943
    assert acc.usage["server_tool_use"] == {"web_search_requests": 10, "web_fetch_requests": 0}
    assert message.stop_reason == "pause_turn"


def test_refusal_facts(loopback: Any, sse_fixtures_dir: Path) -> None:
    message, _, _ = replay(loopback, sse_fixtures_dir / "anthropic-sdk-python__fable-fallback__stream-a-refusal.sse")
    assert message.stop_reason == "refusal"
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.text == "Hi"
    assert message.usage.output_tokens == 106


def test_refusal_stop_details_reach_the_message(loopback: Any, sse_fixtures_dir: Path) -> None:
    message, _, ref = replay(loopback, sse_fixtures_dir / "anthropic-sdk-python__fable-fallback__stream-a-refusal.sse")
    assert (message.model_extra or {}).get("stop_details") == ref.of_type("message_delta")[-1]["delta"]["stop_details"]


def test_tool_use_input_is_parsed_from_its_json_pieces(loopback: Any, sse_fixtures_dir: Path) -> None:
    message, _, ref = replay(loopback, sse_fixtures_dir / "anthropic-sdk-python__test_messages__tool_use_response.sse")
    tool = message.content[1]
    assert isinstance(tool, ToolUseBlock)
    assert ref.deltas(1, "input_json_delta")[0]["partial_json"] == ""  # the first piece is empty
    assert (tool.id, tool.name, tool.input) == ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"})
    assert tool.model_extra == {"caller": {"type": "direct"}}  # unknown fields are kept
    assert message.text == "I'll check the current weather in Paris for you."
    assert message.stop_reason == "tool_use"


def test_thinking_block_keeps_its_signature(loopback: Any, sse_fixtures_dir: Path) -> None:
    path = sse_fixtures_dir / "pydantic-ai__test_anthropic__test_anthropic_model_thinking_part_stream.sse"
    message, _, ref = replay(loopback, path)
    thinking = message.content[0]
    assert isinstance(thinking, ThinkingBlock)
    [signature] = ref.deltas(0, "signature_delta")
    assert len(signature["signature"]) > 100
    assert thinking.signature == signature["signature"]
    assert thinking.thinking == "".join(d["thinking"] for d in ref.deltas(0, "thinking_delta"))
    assert len(ref.deltas(0, "thinking_delta")) == 14


def test_web_search_text_blocks_carry_citations(loopback: Any, sse_fixtures_dir: Path) -> None:
    path = sse_fixtures_dir / "pydantic-ai__test_anthropic__test_anthropic_model_web_search_tool_stream.sse"
    message, _, ref = replay(loopback, path)
    citations = {i: b.citations for i, b in enumerate(message.content) if isinstance(b, TextBlock) and b.citations}
    expected = {
        index: [d["citation"] for d in ref.deltas(index, "citations_delta")]
        for index in ref.block_starts()
        if ref.deltas(index, "citations_delta")
    }
    assert citations == expected
    flat = [c for cs in citations.values() for c in cs]
    assert len(flat) == 7
    assert all(c["type"] == "web_search_result_location" and c["url"].startswith("http") for c in flat)
    kinds = [b.type for b in message.content]
    assert kinds[:4] == ["thinking", "server_tool_use", "web_search_tool_result", "text"]
    search = message.content[1]
    assert isinstance(search, ServerToolUseBlock) and search.name == "web_search"
    assert search.input == json.loads("".join(d["partial_json"] for d in ref.deltas(1, "input_json_delta")))
    assert message.content[2].model_dump(mode="json", exclude_none=True) == ref.block_starts()[2]


# --- stream robustness -----------------------------------------------------------------------


def test_unknown_event_and_delta_types_are_tolerated(loopback: Any, flavour: str) -> None:
    future_event = sse({"type": "brand_new_event", "payload": {"x": 1}})
    future_delta = sse({"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "blob": "?"}})
    loopback.serve(synthetic_stream(["Hel", "lo"], extra={1: future_event, 3: future_delta}))

    outcome = stream(flavour, settings_for(loopback.base_url), request())

    assert outcome.error is None
    assert outcome.text == "Hello"
    assert any(isinstance(e, OtherEvent) and e.type == "brand_new_event" for e in outcome.events)
    deltas = [e.delta.type for e in outcome.events if isinstance(e, ContentBlockDeltaEvent)]
    assert deltas == ["text_delta", "future_delta", "text_delta"]


def test_stream_ending_without_message_stop_is_interrupted(loopback: Any, flavour: str) -> None:
    loopback.serve(synthetic_stream(["Partial ", "answer"], stop=False), chunk_size=16)
    outcome = stream(flavour, settings_for(loopback.base_url, max_retries=2), request())
    assert isinstance(outcome.error, StreamInterrupted)
    assert outcome.text == "Partial answer"
    assert len(loopback.requests) == 1


def test_connection_cut_mid_body_is_interrupted(loopback: Any, flavour: str) -> None:
    body = synthetic_stream(["Partial ", "answer", " never seen"])
    loopback.serve(body, chunk_size=8, cut_after=body.index(b" never seen") - 40)
    outcome = stream(flavour, settings_for(loopback.base_url, max_retries=2), request())
    assert isinstance(outcome.error, StreamInterrupted)
    assert outcome.text == "Partial answer"
    assert len(loopback.requests) == 1


def test_connection_lost_while_reading_a_body_is_a_connection_error(loopback: Any, flavour: str) -> None:
    loopback.serve(b'{"id": "msg_1", "content": []}', content_type="application/json", cut_after=8)
    with pytest.raises(APIConnectionError, match=re.escape(loopback.base_url)):
        call(flavour, settings_for(loopback.base_url), "count_tokens", request())


@pytest.mark.parametrize(
    ("method", "args"),
    [("list_models", ()), ("count_tokens", (request(),))],
    ids=["list_models", "count_tokens"],
)
def test_unexpected_success_body_is_a_claude_error(
    loopback: Any, flavour: str, method: str, args: tuple[Any, ...]
) -> None:
    loopback.serve(b"<html><body>Please sign in to the Wi-Fi</body></html>", content_type="text/html")
    with pytest.raises(UnexpectedResponseError, match=r"answered 200 with text/html"):
        call(flavour, settings_for(loopback.base_url), method, *args)


def test_a_success_that_is_not_an_event_stream_says_so(loopback: Any, flavour: str) -> None:
    loopback.serve(b"<html><body>Please sign in to the Wi-Fi</body></html>", content_type="text/html")
    outcome = stream(flavour, settings_for(loopback.base_url), request())
    assert isinstance(outcome.error, UnexpectedResponseError)
    assert "not an event stream" in str(outcome.error) and loopback.base_url in str(outcome.error)


# --- the stand-in: failures mid-stream ----------------------------------------------------------


def test_error_event_mid_stream(server: StandIn, flavour: str) -> None:
    server.fail(error_after=3, error_type="overloaded_error")
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())

    assert type(outcome.error) is OverloadedError
    assert outcome.error.status_code is None
    assert outcome.error.error_type == "overloaded_error"
    assert outcome.error.request_id == outcome.request_id
    assert outcome.request_id is not None and REQUEST_ID.match(outcome.request_id)
    assert outcome.text == deltas_sent(server, 3)
    assert len(server.requests) == 1


def test_dropped_connection_mid_stream(server: StandIn, flavour: str) -> None:
    server.fail(drop_after=3)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())

    assert isinstance(outcome.error, StreamInterrupted)
    assert outcome.text == deltas_sent(server, 3)
    assert len(server.requests) == 1


def test_complete_stand_in_stream(server: StandIn, flavour: str) -> None:
    outcome = stream(flavour, settings_for(server.base_url), request("Explain [[markdown]]"))
    assert outcome.error is None
    assert outcome.text == deltas_sent(server)
    assert outcome.accumulator is not None and outcome.accumulator.usage["output_tokens"] == len(
        split_into_deltas(outcome.text)
    )


# --- the retry policy -------------------------------------------------------------------------


def test_overloaded_twice_then_success(server: StandIn, flavour: str) -> None:
    server.fail(status=529, times=2, retry_after_ms=FAST_RETRY_MS)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    assert outcome.error is None
    assert outcome.text == deltas_sent(server)
    assert len(server.message_requests) == 3


def test_retries_exhausted(server: StandIn, flavour: str) -> None:
    server.fail(status=529, times=3, retry_after_ms=FAST_RETRY_MS)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    assert type(outcome.error) is OverloadedError
    assert outcome.error.status_code == 529
    assert len(server.message_requests) == 3


@pytest.mark.parametrize(
    ("fault", "seconds"),
    [(Fault(status=429, retry_after=0.3), 0.3), (Fault(status=429, retry_after_ms=700), 0.7)],
    ids=["retry-after", "retry-after-ms"],
)
def test_rate_limit_waits_as_the_server_asks(server: StandIn, fault: Fault, seconds: float) -> None:
    # 0.7 s is longer than any first backoff (at most 0.5 s): only the header can explain it.
    server.fail(fault)
    started = time.monotonic()
    outcome = stream_sync(settings_for(server.base_url, max_retries=2), request())
    elapsed = time.monotonic() - started
    assert outcome.error is None
    assert len(server.message_requests) == 2
    assert seconds <= elapsed < seconds + 0.5


def test_rate_limit_waits_until_the_http_date_the_server_gives(server: StandIn, flavour: str) -> None:
    # An HTTP date has whole seconds: this one is 2 to 3 s ahead, longer than any first backoff.
    when = datetime.fromtimestamp(math.floor(time.time()) + 3, timezone.utc)
    server.fail(status=429, retry_after=when)
    asked = when.timestamp() - time.time()
    started = time.monotonic()
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    elapsed = time.monotonic() - started
    assert outcome.error is None
    assert outcome.text == deltas_sent(server)
    assert len(server.message_requests) == 2
    assert asked - 0.1 <= elapsed < asked + 1.5


@pytest.mark.parametrize(
    ("route", "method", "args"),
    [("/v1/models", "list_models", ()), ("/v1/messages/count_tokens", "count_tokens", (request(),))],
    ids=["list_models", "count_tokens"],
)
def test_models_and_counts_are_retried_as_the_server_asks(
    server: StandIn, flavour: str, route: str, method: str, args: tuple[Any, ...]
) -> None:
    server.fail(status=529, retry_after_ms=FAST_RETRY_MS, times=2, route=route)
    assert call(flavour, settings_for(server.base_url, max_retries=2), method, *args)
    assert [r.path for r in server.requests] == [route] * 3


def test_should_retry_false_stops_retries(server: StandIn, flavour: str) -> None:
    server.fail(status=500, should_retry=False)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    assert type(outcome.error) is InternalServerError
    assert len(server.message_requests) == 1


def test_a_spend_cap_is_never_retried_even_when_the_server_says_it_may_be(server: StandIn, flavour: str) -> None:
    server.fail(status=429, error_code="enforced_spend_limit_reached", should_retry=True, retry_after_ms=FAST_RETRY_MS, times=3)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    assert type(outcome.error) is RateLimitError and outcome.error.error_code == "enforced_spend_limit_reached"
    assert not outcome.error.retryable
    assert len(server.message_requests) == 1


def test_should_retry_true_retries_a_400(server: StandIn) -> None:
    server.fail(status=400, should_retry=True, retry_after_ms=FAST_RETRY_MS)
    assert stream_sync(settings_for(server.base_url, max_retries=2), request()).error is None
    assert len(server.message_requests) == 2


def test_bad_request_and_authentication_are_never_retried(server: StandIn, flavour: str) -> None:
    server.fail(status=400)
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2), request())
    assert type(outcome.error) is BadRequestError
    assert len(server.requests) == 1

    server.reset()
    outcome = stream(
        flavour, settings_for(server.base_url, api_key="sk-ant-wrong-key-000000", max_retries=2), request()
    )
    assert type(outcome.error) is AuthenticationError
    assert len(server.requests) == 1


@pytest.mark.parametrize(("flavour_name", "retries"), [("sync", 2), ("async", 1)])
def test_connection_refused_is_retried_with_backoff(flavour_name: str, retries: int) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    outcome = stream(flavour_name, settings_for(base_url, max_retries=retries), request())
    elapsed = time.monotonic() - started

    assert type(outcome.error) is APIConnectionError
    assert base_url in str(outcome.error)
    shortest = sum(0.375 * 2**n for n in range(retries))
    longest = sum(0.5 * 2**n for n in range(retries))
    assert shortest <= elapsed < longest + 0.5


def test_connection_refused_without_retries_is_immediate() -> None:
    started = time.monotonic()
    outcome = stream_sync(settings_for(f"http://127.0.0.1:{closed_port()}"), request())
    assert isinstance(outcome.error, APIConnectionError)
    assert time.monotonic() - started < 0.3


def test_retry_after_beyond_the_limit_is_raised_at_once(server: StandIn, flavour: str) -> None:
    server.fail(status=429, retry_after=30)
    started = time.monotonic()
    outcome = stream(flavour, settings_for(server.base_url, max_retries=2, max_retry_wait=1.0), request())
    assert time.monotonic() - started < 1.0
    assert type(outcome.error) is RateLimitError
    assert outcome.error.retry_after == 30
    assert len(server.message_requests) == 1


class _FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("retries_taken", "low", "high"), [(0, 0.375, 0.5), (1, 0.75, 1.0), (2, 1.5, 2.0), (4, 6.0, 8.0), (9, 6.0, 8.0)]
)
def test_backoff_bounds(retries_taken: int, low: float, high: float) -> None:
    assert backoff(retries_taken, _FixedRandom(0.0)) == high
    assert backoff(retries_taken, _FixedRandom(1.0)) == low
    rng = random.Random(retries_taken)
    samples = [backoff(retries_taken, rng) for _ in range(500)]
    assert all(low <= s <= high for s in samples)
    assert max(samples) - min(samples) > (high - low) * 0.8  # the jitter really varies


def test_server_retry_after() -> None:
    assert server_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert server_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert server_retry_after({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert server_retry_after({"retry-after": "2"}) == 2.0
    assert server_retry_after({"retry-after": "0.3"}) == 0.3
    assert server_retry_after({"retry-after": "-4"}) == 0.0
    assert server_retry_after({"retry-after": "whenever"}) is None
    assert server_retry_after({}) is None
    future = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=10), usegmt=True)
    assert 8.0 < server_retry_after({"retry-after": future}) <= 10.0  # type: ignore[operator]
    past = format_datetime(datetime.now(timezone.utc) - timedelta(seconds=10), usegmt=True)
    assert server_retry_after({"retry-after": past}) == 0.0


def test_retry_delay() -> None:
    assert retry_delay({"retry-after-ms": "20"}, 3) == 0.02
    assert retry_delay({"retry-after": "5"}, 0) == 5.0
    for headers in ({}, {"retry-after": "0"}, {"retry-after": "nonsense"}):
        assert 0.375 <= retry_delay(headers, 0) <= 0.5
        assert 0.75 <= retry_delay(headers, 1) <= 1.0
        assert 6.0 <= retry_delay(headers, 7) <= 8.0


@pytest.mark.parametrize(
    ("status", "headers", "verdict"),
    [
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (529, {}, True),
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (413, {}, False),
        (500, {"x-should-retry": "false"}, False),
        (429, {"x-should-retry": "false"}, False),
        (400, {"x-should-retry": "true"}, True),
        (500, {"x-should-retry": "maybe"}, True),
    ],
)
def test_should_retry(status: int, headers: dict[str, str], verdict: bool) -> None:
    assert should_retry(status, headers) is verdict


# --- error mapping ----------------------------------------------------------------------------

ERROR_CLASSES = [
    (400, "invalid_request_error", BadRequestError),
    (401, "authentication_error", AuthenticationError),
    (403, "permission_error", PermissionDeniedError),
    (404, "not_found_error", NotFoundError),
    (413, "request_too_large", RequestTooLargeError),
    (429, "rate_limit_error", RateLimitError),
    (500, "api_error", InternalServerError),
    (529, "overloaded_error", OverloadedError),
]


@pytest.mark.parametrize(("status", "error_type", "cls"), ERROR_CLASSES, ids=[str(s) for s, _, _ in ERROR_CLASSES])
def test_error_statuses_map_to_classes(
    server: StandIn, flavour: str, status: int, error_type: str, cls: type[APIError]
) -> None:
    fault = {"status": status, "error_type": error_type, "should_retry": False, "message": f"scripted {status}"}
    server.fail(**fault)
    server.fail(**fault, route="/v1/messages/count_tokens")
    settings = settings_for(server.base_url, max_retries=2)

    streamed = stream(flavour, settings, request()).error
    with pytest.raises(cls) as counted:
        call(flavour, settings, "count_tokens", request())

    for exc in (streamed, counted.value):
        assert type(exc) is cls
        assert isinstance(exc, APIError) and isinstance(exc, ClaudeError)
        assert exc.status_code == status
        assert exc.error_type == error_type
        assert exc.message == f"scripted {status}"
        assert exc.request_id is not None and REQUEST_ID.match(exc.request_id)
        assert str(exc) == f"{status} {error_type}: scripted {status} (request-id {exc.request_id})"
    assert [r.path for r in server.requests] == ["/v1/messages", "/v1/messages/count_tokens"]  # neither retried


def test_missing_max_tokens_is_a_bad_request(server: StandIn) -> None:
    incomplete = MessageRequest.model_construct(
        model="claude-sonnet-5-5", messages=[MessageParam(role="user", content="hi")]
    )
    outcome = stream("sync", settings_for(server.base_url), incomplete)
    assert type(outcome.error) is BadRequestError and "max_tokens: Field required" in str(outcome.error)
    assert "max_tokens" not in server.requests[-1].body


def test_temperature_on_a_default_sampling_model_is_a_bad_request(server: StandIn, flavour: str) -> None:
    outcome = stream(flavour, settings_for(server.base_url), request(temperature=0.5))
    assert type(outcome.error) is BadRequestError
    assert "temperature" in outcome.error.message
    assert server.requests[-1].body["temperature"] == 0.5


def test_temperature_under_2026_version_is_refused_before_sending(server: StandIn, flavour: str) -> None:
    settings = settings_for(server.base_url, api_version="2026-10-21")
    outcome = stream(flavour, settings, request(model="claude-haiku-4-5", temperature=0.5))
    assert type(outcome.error) is ConfigurationError
    assert "temperature" in str(outcome.error)
    assert server.requests == []


def test_unknown_model_is_not_found(server: StandIn, flavour: str) -> None:
    outcome = stream(flavour, settings_for(server.base_url), request(model="claude-3-opus-20240229"))
    assert type(outcome.error) is NotFoundError
    assert outcome.error.status_code == 404
    assert "claude-3-opus-20240229" in outcome.error.message


def test_wrong_key_is_an_authentication_error_that_never_shows_the_key(server: StandIn, flavour: str) -> None:
    wrong_key = "sk-ant-api03-wrong-key-abcdefghijklmnop-XYZW"
    assert server.api_key == STAND_IN_KEY
    settings = settings_for(server.base_url, api_key=wrong_key)
    outcome = stream(flavour, settings, request())
    assert server.requests[-1].headers["x-api-key"] == wrong_key
    exc = outcome.error
    assert type(exc) is AuthenticationError and exc.status_code == 401
    client = Client(settings) if flavour == "sync" else AsyncClient(settings)
    for shown in (str(exc), repr(exc), repr(client), repr(settings)):
        assert wrong_key not in shown
        assert "wrong-key" not in shown


def test_no_credentials_is_a_configuration_error(server: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    settings = ClientSettings(max_retries=0)
    assert not settings.credentials.present
    outcome = stream("sync", settings, request())
    assert type(outcome.error) is ConfigurationError and "ANTHROPIC_API_KEY" in str(outcome.error)
    assert server.requests == []


# --- what reaches the server ------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "2023-06-01", "2026-10-21"])
def test_request_headers_and_body(server: StandIn, flavour: str, version: str | None) -> None:
    settings = settings_for(server.base_url)
    settings = dataclasses.replace(settings, api_version=version) if version else settings
    assert stream(flavour, settings, request("hi there")).error is None
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == STAND_IN_KEY
    assert "authorization" not in seen.headers
    assert seen.headers["anthropic-version"] == (version or "2023-06-01")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("claude-magic/")
    assert seen.body == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi there"}],
        "stream": True,
    }


def image_request(megabytes: float, seed: int = 0) -> MessageRequest:
    """A question with two images of ``megabytes`` each (PNG-signed random bytes, as base64)."""
    rng = random.Random(seed)
    images = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + rng.randbytes(int(megabytes * 2**20))).decode()}}
        for _ in range(2)
    ]
    awkward = 'a "quoted" line\\ with a backslash, ünïcode, 日本語 and\na newline ' * 2000  # long, and not plain
    return MessageRequest.model_validate(
        {"model": "claude-sonnet-5-5", "max_tokens": 1024, "messages": [{"role": "user", "content": [*images, {"type": "text", "text": awkward}]}]}
    )


def test_a_body_is_sent_byte_for_byte_as_json_would_write_it(loopback: Any, flavour: str) -> None:
    """Long base64 strings are written from where they are, the rest as JSON (keys sorted, so
    the same request is the same bytes): the same bytes."""
    loopback.serve(synthetic_stream(["fine"]))
    req = image_request(0.2)
    assert stream(flavour, settings_for(loopback.base_url), req).text == "fine"
    [seen] = loopback.requests
    expected = json.dumps(Client().message_body(req, stream=True), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    assert seen.body == expected and int(seen.headers["content-length"]) == len(expected)


def test_a_retry_sends_the_same_body_again(server: StandIn, flavour: str) -> None:
    server.fail(status=529, retry_after_ms=FAST_RETRY_MS)
    req = image_request(0.2)
    assert stream(flavour, settings_for(server.base_url, max_retries=1), req).error is None
    first, second = server.message_requests
    assert first.body == second.body == Client().message_body(req, stream=True)


def test_the_request_body_is_let_go_when_the_answer_is_over(server: StandIn, flavour: str) -> None:
    """Without a garbage collection: httpx's response and its stream refer to each other, and
    to the request, so a body httpx held would live on until a full collection."""
    req = image_request(4)
    gc.disable()
    tracemalloc.start(30)
    try:
        assert stream(flavour, settings_for(server.base_url), req).error is None
        kept = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(True, "*/claude_magic/client.py", all_frames=True)])
    finally:
        tracemalloc.stop()
        gc.enable()
    assert sum(trace.size for trace in kept.traces) < 2**20  # the body was 10 MB


def test_auth_token_is_sent_as_bearer(server: StandIn, flavour: str) -> None:
    settings = ClientSettings(credentials=Credentials(auth_token=STAND_IN_KEY), base_url=server.base_url, max_retries=0)
    assert stream(flavour, settings, request()).error is None
    headers = server.requests[-1].headers
    assert headers["authorization"] == f"Bearer {STAND_IN_KEY}"
    assert "x-api-key" not in headers


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/proxy")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-123456")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    settings = ClientSettings()
    assert settings.base_url == "http://127.0.0.1:9/proxy"
    assert settings.credentials.headers() == {"x-api-key": "sk-ant-from-env-123456"}

    monkeypatch.setenv("ANTHROPIC_API_KEY", "")  # empty counts as unset, as in the SDK
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "oauth-token-123456")
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    settings = ClientSettings()
    assert settings.base_url == "https://api.anthropic.com"
    assert settings.credentials.headers() == {"authorization": "Bearer oauth-token-123456"}


def test_default_client_reaches_the_server_named_in_the_environment(stand_in: StandIn, flavour: str) -> None:
    # The plugin's stand_in fixture sets ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
    assert stream(flavour, ClientSettings(max_retries=0), request()).error is None
    assert stand_in.requests[-1].headers["x-api-key"] == STAND_IN_KEY


# --- models, token counting, non-streaming ------------------------------------------------------


def test_list_models(server: StandIn, flavour: str) -> None:
    models = call(flavour, settings_for(server.base_url), "list_models")
    assert [m.id for m in models] == [m["id"] for m in MODELS]
    assert models[2].display_name == "Claude Sonnet 5.5"
    assert models[2].max_tokens == 128_000
    # The client has no page-size setting: it always asks for limit=1000, so the stand-in's
    # seven models come in one page.
    assert [r.query for r in server.requests] == [{"limit": ["1000"]}]


def test_list_models_follows_pagination(loopback: Any, flavour: str) -> None:
    """A server that pages by three whatever the limit: the client follows ``after_id``."""
    ids = [f"model-{n}" for n in range(8)]

    def page(seen: Any) -> bytes:
        after = seen.query.get("after_id", [None])[0]
        start = ids.index(after) + 1 if after else 0
        data = [{"id": i, "type": "model", "display_name": i} for i in ids[start : start + 3]]
        return json.dumps(
            {"data": data, "has_more": start + 3 < len(ids), "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        ).encode()

    loopback.serve(page, content_type="application/json")
    models = call(flavour, settings_for(loopback.base_url), "list_models")
    assert [m.id for m in models] == ids
    assert [r.query.get("after_id") for r in loopback.requests] == [None, ["model-2"], ["model-5"]]


def test_stand_in_pages_models(server: StandIn) -> None:
    """The stand-in's own pagination, read with plain httpx since the client can't ask for small pages."""
    headers = {"x-api-key": STAND_IN_KEY, "anthropic-version": "2023-06-01"}
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        while True:
            page = http.get("/v1/models", params=params).json()
            seen += [m["id"] for m in page["data"]]
            assert (page["first_id"], page["last_id"]) == (page["data"][0]["id"], page["data"][-1]["id"])
            if not page["has_more"]:
                break
            params["after_id"] = page["last_id"]
    assert seen == [m["id"] for m in MODELS]
    assert len(server.requests) == 4


def test_count_tokens(server: StandIn, flavour: str) -> None:
    req = request("How many tokens is this?", system="Be brief.", temperature=1.0)
    counted = call(flavour, settings_for(server.base_url), "count_tokens", req)
    assert isinstance(counted, int) and counted > 0
    seen = server.requests[-1]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == {
        "model": "claude-sonnet-5-5",
        "messages": [{"role": "user", "content": "How many tokens is this?"}],
        "system": "Be brief.",
    }
    # The same request, streamed, reports the same input tokens.
    outcome = stream(flavour, settings_for(server.base_url), req)
    assert outcome.accumulator is not None and outcome.accumulator.usage["input_tokens"] == counted
