"""The stand-in's fidelity: the official ``anthropic`` SDK, as a client, must find it to be the
API (its streams, pages, counts and errors), and it must apply the API's validation rules."""

from __future__ import annotations

import base64
import math
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import anthropic
import httpx
import pytest

from claude_magic.testing import StandIn
from claude_magic.testing.answers import STAND_IN_NOTE, answer_for, split_into_deltas, thinking_for
from claude_magic.testing.cache import input_tokens
from claude_magic.testing.models import MODELS
from claude_magic.testing.pytest_plugin import STAND_IN_KEY

MODEL = "claude-sonnet-5-5"
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()


@pytest.fixture
def server(shared_stand_in: StandIn) -> StandIn:
    return shared_stand_in


@pytest.fixture
def http(server: StandIn) -> Iterator[httpx.Client]:
    """Plain httpx, for what the SDK would refuse to send."""
    with httpx.Client(base_url=server.base_url) as client:
        yield client


def api_headers(version: str = "2023-06-01", key: str | None = STAND_IN_KEY) -> dict[str, str]:
    headers = {"anthropic-version": version, "content-type": "application/json"}
    return {**headers, "x-api-key": key} if key else headers


def user(content: Any) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": content}]


def text_of(message: anthropic.types.Message) -> str:
    """The message's one block, which must be text."""
    [block] = message.content
    assert isinstance(block, anthropic.types.TextBlock), block
    return block.text


def expected_answer(server: StandIn) -> str:
    return answer_for(server.message_requests[-1].body)


def assert_error(response: httpx.Response, status: int, error_type: str, message: str | None = None) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert body["request_id"] == response.headers["request-id"]
    if message is not None:
        assert message in body["error"]["message"], body


# --- the SDK as client ------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["What is a left join?", "Show me [[markdown]]", "Talk [[words=300]]"])
def test_sdk_streams(sdk: anthropic.Anthropic, server: StandIn, prompt: str) -> None:
    with sdk.messages.stream(model=MODEL, max_tokens=2048, messages=user(prompt)) as stream:
        streamed = "".join(stream.text_stream)
        message = stream.get_final_message()

    answer = expected_answer(server)
    assert text_of(message) == streamed == answer
    assert answer.endswith(STAND_IN_NOTE)
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.usage.output_tokens == len(split_into_deltas(answer))
    assert message.usage.input_tokens == input_tokens(server.message_requests[-1].body)
    if "words=300" in prompt:
        assert answer.count(" ") >= 299


def test_sdk_request_is_recorded(sdk: anthropic.Anthropic, server: StandIn) -> None:
    sdk.messages.create(model=MODEL, max_tokens=64, system="Be brief.", messages=user("hello"))
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["authorization"] == f"Bearer {STAND_IN_KEY}"
    assert seen.headers["anthropic-version"] in ("2023-06-01", "2026-10-21")
    assert seen.body == {"model": MODEL, "max_tokens": 64, "system": "Be brief.", "messages": user("hello")}
    assert seen.prompts() == ["hello"]


def test_sdk_create(sdk: anthropic.Anthropic, server: StandIn) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=256, messages=user("Show me [[markdown]]"))
    assert text_of(message) == expected_answer(server)
    assert message.id.startswith("msg_standin_")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(split_into_deltas(text_of(message)))


def test_sdk_models_auto_pagination(sdk: anthropic.Anthropic, server: StandIn) -> None:
    models = list(sdk.models.list(limit=2))
    assert [m.id for m in models] == [m["id"] for m in MODELS]
    assert len(models) == 7
    assert [r.query.get("after_id") for r in server.requests] == [
        None,
        ["claude-haiku-5-5"],
        ["claude-opus-5-5"],
        ["claude-sonnet-5"],
    ]
    assert all(r.query["limit"] == ["2"] for r in server.requests)
    assert models[-1].max_input_tokens == 200_000


def test_sdk_count_tokens(sdk: anthropic.Anthropic, server: StandIn) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, system="Be brief.", messages=user("How long is this?"))
    assert counted.input_tokens == input_tokens(server.requests[-1].body) > 0
    assert server.requests[-1].path == "/v1/messages/count_tokens"


SDK_ERRORS = [
    (400, anthropic.BadRequestError),
    (401, anthropic.AuthenticationError),
    (403, anthropic.PermissionDeniedError),
    (404, anthropic.NotFoundError),
    (413, anthropic.ContentTooLargeError),
    (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError),
    (529, anthropic.OverloadedError),
]


@pytest.mark.parametrize(("status", "cls"), SDK_ERRORS, ids=[str(s) for s, _ in SDK_ERRORS])
def test_sdk_error_classes(
    sdk: anthropic.Anthropic, server: StandIn, status: int, cls: type[anthropic.APIStatusError]
) -> None:
    server.fail(status=status, message=f"scripted {status}")
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.request_id is not None and exc.request_id.startswith("req_standin_")
    assert isinstance(exc.body, dict) and exc.body["error"]["message"] == f"scripted {status}"
    assert len(server.message_requests) == 1


def test_sdk_mid_stream_error(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.fail(error_after=3, error_type="overloaded_error")
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=user("hi")) as stream,
    ):
        received.extend(stream.text_stream)
    assert "overloaded_error" in str(info.value)
    assert "".join(received) == "".join(split_into_deltas(expected_answer(server))[:3])


def test_sdk_retries_on_the_stand_ins_retry_headers(server: StandIn) -> None:
    server.fail(status=529, times=2, retry_after_ms=1)
    with anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=server.base_url, max_retries=2) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    assert text_of(message) == expected_answer(server)
    assert [r.headers["x-stainless-retry-count"] for r in server.message_requests] == ["0", "1", "2"]


def test_sdk_with_plugin_fixture(stand_in: StandIn) -> None:
    """The plugin's fixture points the SDK's environment variables at the stand-in."""
    with anthropic.Anthropic(max_retries=0) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    assert text_of(message) == answer_for(stand_in.requests[-1].body)


# --- the stand-in's validation ------------------------------------------------------------------


def test_missing_max_tokens(http: httpx.Client) -> None:
    response = http.post("/v1/messages", headers=api_headers(), json={"model": MODEL, "messages": user("hi")})
    assert_error(response, 400, "invalid_request_error", "max_tokens: Field required")


def test_sampling_parameter_under_2026_version(http: httpx.Client, sdk: anthropic.Anthropic) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": user("hi"), "temperature": 0.5}
    assert http.post("/v1/messages", headers=api_headers(), json=body).status_code == 200
    response = http.post("/v1/messages", headers=api_headers("2026-10-21"), json=body)
    assert_error(response, 400, "invalid_request_error", "temperature: Extra inputs are not permitted")
    # SDK 2.x has dropped the temperature argument; extra_body still sends one.
    with pytest.raises(anthropic.BadRequestError, match="temperature: Extra inputs are not permitted"):
        sdk.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=user("hi"),
            extra_body={"temperature": 0.5},
            extra_headers={"anthropic-version": "2026-10-21"},
        )


def test_temperature_on_a_default_sampling_model(http: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": user("hi"), "temperature": 0.5}
    assert_error(
        http.post("/v1/messages", headers=api_headers(), json=body), 400, "invalid_request_error", "temperature"
    )
    body["temperature"] = 1.0
    assert http.post("/v1/messages", headers=api_headers(), json=body).status_code == 200


def image_body(media_type: str, data: str) -> dict[str, Any]:
    block = {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"model": MODEL, "max_tokens": 64, "messages": user([block, {"type": "text", "text": "What is it?"}])}


def test_image_validation(http: httpx.Client) -> None:
    good = http.post("/v1/messages", headers=api_headers(), json=image_body("image/png", PNG_1X1))
    assert good.status_code == 200
    assert "images: 1" in good.json()["content"][0]["text"]

    bad_type = http.post("/v1/messages", headers=api_headers(), json=image_body("image/bmp", PNG_1X1))
    assert_error(bad_type, 400, "invalid_request_error", "media_type")

    mismatch = http.post("/v1/messages", headers=api_headers(), json=image_body("image/jpeg", PNG_1X1))
    assert_error(mismatch, 400, "invalid_request_error", "does not match")


def test_authentication(http: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": user("hi")}
    assert_error(http.post("/v1/messages", headers=api_headers(key=None), json=body), 401, "authentication_error")
    wrong = http.post("/v1/messages", headers=api_headers(key="sk-ant-not-the-key"), json=body)
    assert_error(wrong, 401, "authentication_error", "invalid x-api-key")
    assert "sk-ant-not-the-key" not in wrong.text


def test_unknown_route(http: httpx.Client) -> None:
    assert_error(http.get("/v1/nothing-here", headers=api_headers()), 404, "not_found_error")


def test_unknown_model(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="claude-3-opus-20240229"):
        sdk.messages.create(model="claude-3-opus-20240229", max_tokens=64, messages=user("hi"))


def test_delay_directive_slows_deltas(http: httpx.Client) -> None:
    def stream_seconds(prompt: str) -> tuple[float, int]:
        body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": user(prompt)}
        started = time.monotonic()
        with http.stream("POST", "/v1/messages", headers=api_headers(), json=body) as response:
            deltas = sum(line.count("text_delta") for line in response.iter_lines())
        return time.monotonic() - started, deltas

    fast, _ = stream_seconds("Say it [[words=4]]")
    slow, deltas = stream_seconds("Say it [[words=4]] [[delay=0.05]]")
    assert deltas == len(split_into_deltas(" ".join(["w"] * 4) + "\n\n" + STAND_IN_NOTE))
    assert slow >= deltas * 0.05
    assert slow > fast + 0.2


# --- the request's limits: max_tokens, stop_sequences, tool_choice ------------------------------


def ask(sdk: anthropic.Anthropic, streamed: bool, **params: Any) -> anthropic.types.Message:
    """One answer, streamed (its text deltas must add up to the final message's text) or not."""
    if not streamed:
        return sdk.messages.create(**params)
    with sdk.messages.stream(**params) as stream:
        streamed_text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert streamed_text == "".join(b.text for b in message.content if isinstance(b, anthropic.types.TextBlock))
    return message


STREAMED = pytest.mark.parametrize("streamed", [True, False], ids=["stream", "create"])


@STREAMED
def test_sdk_max_tokens_cuts_the_answer(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    message = ask(sdk, streamed, model=MODEL, max_tokens=5, messages=user("What is a left join?"))
    assert message.stop_reason == "max_tokens"
    assert message.stop_sequence is None
    assert message.usage.output_tokens == 5
    assert text_of(message) == "".join(split_into_deltas(expected_answer(server))[:5])


@STREAMED
def test_sdk_max_tokens_counts_thinking(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": user("What is a left join?")}
    thinking = split_into_deltas(thinking_for(body))
    message = ask(sdk, streamed, **{**body, "max_tokens": len(thinking) + 2}, thinking={"type": "adaptive"})
    thought, answer = message.content
    assert isinstance(thought, anthropic.types.ThinkingBlock) and thought.thinking == "".join(thinking)
    assert isinstance(answer, anthropic.types.TextBlock)
    assert answer.text == "".join(split_into_deltas(expected_answer(server))[:2])
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", len(thinking) + 2)

    cut = ask(sdk, streamed, **body, thinking={"type": "adaptive"})
    [thought] = cut.content
    assert isinstance(thought, anthropic.types.ThinkingBlock) and thought.thinking == "".join(thinking[:4])
    assert thought.signature  # a cut thinking block can still be sent back
    assert (cut.stop_reason, cut.usage.output_tokens) == ("max_tokens", 4)


@STREAMED
def test_sdk_max_tokens_zero_generates_nothing(sdk: anthropic.Anthropic, streamed: bool) -> None:
    message = ask(sdk, streamed, model=MODEL, max_tokens=0, messages=user("Warm the cache"))
    assert (message.content, message.stop_reason, message.usage.output_tokens) == ([], "max_tokens", 0)


@STREAMED
def test_sdk_stop_sequence_ends_the_answer_before_it(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    stops = ["never in the answer", "- model:"]
    message = ask(sdk, streamed, model=MODEL, max_tokens=1024, stop_sequences=stops, messages=user("A left join?"))
    answer = expected_answer(server)
    assert text_of(message) == answer[: answer.index("- model:")]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "- model:")
    assert message.usage.output_tokens == len(split_into_deltas(text_of(message))) + 1  # the sequence is generated


@STREAMED
def test_sdk_the_first_stop_sequence_to_complete_wins(sdk: anthropic.Anthropic, streamed: bool) -> None:
    stops = ["`claude-sonnet", "**Stand-in"]  # the second starts the answer
    message = ask(sdk, streamed, model=MODEL, max_tokens=1024, stop_sequences=stops, messages=user("hi"))
    assert (message.content, message.stop_reason, message.stop_sequence) == ([], "stop_sequence", "**Stand-in")
    assert message.usage.output_tokens == 1


def test_sdk_max_tokens_reached_before_a_stop_sequence(sdk: anthropic.Anthropic, server: StandIn) -> None:
    params: dict[str, Any] = {"model": MODEL, "stop_sequences": ["- model:"], "messages": user("hi")}
    sdk.messages.create(**params, max_tokens=64)
    answer = expected_answer(server)
    before = split_into_deltas(answer[: answer.index("- model:")])
    assert sdk.messages.create(**params, max_tokens=len(before) + 1).stop_reason == "stop_sequence"
    message = sdk.messages.create(**params, max_tokens=len(before))  # no room left to generate the sequence
    assert (message.stop_reason, message.stop_sequence) == ("max_tokens", None)
    assert message.usage.output_tokens == len(before)
    assert text_of(message) == "".join(before)


@pytest.mark.parametrize(
    ("stops", "message"),
    [
        ("STOP", "stop_sequences: Input should be a valid list"),
        (["ok", 7], "stop_sequences.1: Input should be a valid string"),
        ([""], "stop_sequences: each stop sequence must be non-empty"),
        (["\n"], "stop_sequences: each stop sequence must contain non-whitespace"),
    ],
    ids=["string", "number", "empty", "whitespace"],
)
def test_stop_sequences_validation(http: httpx.Client, stops: Any, message: str) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": user("hi"), "stop_sequences": stops}
    assert_error(http.post("/v1/messages", headers=api_headers(), json=body), 400, "invalid_request_error", message)


LOOKUP: anthropic.types.ToolParam = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
}
CONVERT: anthropic.types.ToolParam = {
    "name": "convert",
    "description": "Convert an amount.",
    "input_schema": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
}


def tool_calls(message: anthropic.types.Message) -> list[tuple[str, object]]:
    return [(b.name, b.input) for b in message.content if isinstance(b, anthropic.types.ToolUseBlock)]


def text_of_first(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert isinstance(block, anthropic.types.TextBlock), block
    return block.text


def after_a_tool_result() -> list[anthropic.types.MessageParam]:
    """A conversation whose last turn answers a tool call: unforced, the stand-in answers in text."""
    call: anthropic.types.ToolUseBlockParam = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    result: anthropic.types.ToolResultBlockParam = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "joins"}
    return [*user("What is a join?"), {"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]


@STREAMED
def test_sdk_tool_choice_none_calls_no_tool(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    server.tool_calls.append(("lookup", {"word": "scripted"}))
    try:
        params: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "tools": [LOOKUP], "messages": user("Define join")}
        message = ask(sdk, streamed, **params, tool_choice={"type": "none"})
        assert tool_calls(message) == [] and message.stop_reason == "end_turn"
        assert text_of(message) == expected_answer(server)
        assert list(server.tool_calls) == [("lookup", {"word": "scripted"})]  # kept for a call that may use it
        assert tool_calls(ask(sdk, streamed, **params)) == [("lookup", {"word": "scripted"})]
    finally:
        server.tool_calls.clear()


@STREAMED
def test_sdk_tool_choice_any_forces_a_call(sdk: anthropic.Anthropic, streamed: bool) -> None:
    params: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "tools": [LOOKUP, CONVERT]}
    params["messages"] = after_a_tool_result()
    assert tool_calls(ask(sdk, streamed, **params)) == []  # auto: the result is answered in text
    forced = ask(sdk, streamed, **params, tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert [type(b) for b in forced.content] == [anthropic.types.ToolUseBlock]  # no text before a forced call
    assert tool_calls(forced) == [("lookup", {"word": "text"})]
    assert forced.stop_reason == "tool_use"


@STREAMED
def test_sdk_tool_choice_tool_calls_the_named_tool(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    server.tool_calls.append(("lookup", {"word": "scripted"}))
    try:
        params: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "tools": [LOOKUP, CONVERT], "messages": user("3 €")}
        forced = ask(sdk, streamed, **params, tool_choice={"type": "tool", "name": "convert"})
        assert [type(b) for b in forced.content] == [anthropic.types.ToolUseBlock]
        assert tool_calls(forced) == [("convert", {"amount": 1.5})]
        assert (forced.stop_reason, forced.usage.output_tokens) == ("tool_use", 1)
        assert list(server.tool_calls) == [("lookup", {"word": "scripted"})]  # a call of another tool is not taken
        assert tool_calls(ask(sdk, streamed, **params, tool_choice={"type": "tool", "name": "lookup"})) == [
            ("lookup", {"word": "scripted"})
        ]
    finally:
        server.tool_calls.clear()


def test_sdk_tool_choice_auto_is_unchanged(sdk: anthropic.Anthropic) -> None:
    choice: anthropic.types.ToolChoiceAutoParam = {"type": "auto", "disable_parallel_tool_use": True}
    message = sdk.messages.create(model=MODEL, max_tokens=64, tools=[LOOKUP], tool_choice=choice, messages=user("hi"))
    assert text_of_first(message) == "I'll use the tool `lookup`."
    assert tool_calls(message) == [("lookup", {"word": "text"})]


def message_body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": user("hi"), **fields}


def assert_refused(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    """``/v1/messages`` and ``/v1/messages/count_tokens`` both refuse ``body`` with ``message``."""
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        assert_error(http.post(path, headers=api_headers(), json=body), 400, "invalid_request_error", message)


BAD_TOOL_CHOICES = [
    pytest.param({"type": "tool", "name": "convert"}, "tool_choice.tool.name: no tool named 'convert'", id="unknown"),
    pytest.param({"type": "tool"}, "tool_choice.tool.name: Field required", id="no-name"),
    pytest.param({"type": "sometimes"}, "does not match any of the expected tags", id="unknown-type"),
    pytest.param("auto", "does not match any of the expected tags", id="a-string"),
    pytest.param(
        {"type": "none", "disable_parallel_tool_use": True},
        "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
        id="extra-field",
    ),
    pytest.param(
        {"type": "any", "disable_parallel_tool_use": "yes"},
        "tool_choice.any.disable_parallel_tool_use: Input should be a valid boolean",
        id="not-a-bool",
    ),
]


@pytest.mark.parametrize(("choice", "message"), BAD_TOOL_CHOICES)
def test_tool_choice_validation(http: httpx.Client, choice: Any, message: str) -> None:
    assert_refused(http, message_body(tools=[LOOKUP], tool_choice=choice), message)


def test_tool_choice_needs_tools(http: httpx.Client) -> None:
    needs = "may only be specified while providing tools"
    assert_refused(http, message_body(tool_choice={"type": "auto"}), f"tool_choice.auto {needs}")
    assert_refused(http, message_body(tools=[], tool_choice={"type": "none"}), f"tool_choice.none {needs}")


def test_tool_choice_cannot_force_a_call_while_thinking(http: httpx.Client) -> None:
    thinking = message_body(tools=[LOOKUP], thinking={"type": "adaptive"})
    refusal = "Thinking may not be enabled when tool_choice forces tool use"
    assert_refused(http, {**thinking, "tool_choice": {"type": "any"}}, refusal)
    allowed = http.post("/v1/messages", headers=api_headers(), json={**thinking, "tool_choice": {"type": "auto"}})
    assert allowed.status_code == 200


# --- GET /v1/models/{model_id} ----------------------------------------------------------------


def test_sdk_models_retrieve(sdk: anthropic.Anthropic, server: StandIn) -> None:
    info = sdk.models.retrieve("claude-haiku-4-5")
    assert (info.id, info.display_name, info.max_input_tokens, info.max_tokens) == (
        "claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 64_000
    )
    assert sdk.models.retrieve("claude-haiku-4-5-20251001").id == "claude-haiku-4-5"  # a dated snapshot
    with pytest.raises(anthropic.NotFoundError, match="claude-3-opus-20240229") as info_404:
        sdk.models.retrieve("claude-3-opus-20240229")
    assert info_404.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert [r.path for r in server.requests] == [
        "/v1/models/claude-haiku-4-5",
        "/v1/models/claude-haiku-4-5-20251001",
        "/v1/models/claude-3-opus-20240229",
    ]


# --- errors say whether to retry ------------------------------------------------------------------

RETRY_VERDICTS = [
    (400, "false"), (401, "false"), (403, "false"), (404, "false"), (408, "true"), (409, "true"),
    (413, "false"), (429, "true"), (500, "true"), (503, "true"), (529, "true"),
]  # fmt: skip


def retry_verdict(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.headers["x-should-retry"]


@pytest.mark.parametrize(("status", "verdict"), RETRY_VERDICTS, ids=[str(s) for s, _ in RETRY_VERDICTS])
def test_scripted_errors_say_whether_to_retry(http: httpx.Client, server: StandIn, status: int, verdict: str) -> None:
    server.fail(status=status)
    assert retry_verdict(http.post("/v1/messages", headers=api_headers(), json=message_body())) == (status, verdict)


def test_the_stand_ins_own_errors_say_whether_to_retry(http: httpx.Client, server: StandIn) -> None:
    def post(body: dict[str, Any], key: str | None = STAND_IN_KEY) -> tuple[int, str]:
        return retry_verdict(http.post("/v1/messages", headers=api_headers(key=key), json=body))

    assert post({"model": MODEL, "messages": user("hi")}) == (400, "false")
    assert post(message_body(), key=None) == (401, "false")
    assert post(message_body(model="claude-3-opus-20240229")) == (404, "false")
    assert retry_verdict(http.get("/v1/nothing-here", headers=api_headers())) == (404, "false")
    server.fail(status=500, should_retry=False)  # a scripted verdict overrides the API's
    assert post(message_body()) == (500, "false")
    server.fail(status=400, should_retry=True)
    assert post(message_body()) == (400, "true")


# --- faults on every route ---------------------------------------------------------------------


def test_sdk_meets_faults_on_every_route(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.fail(status=503, message="counting is down", route="/v1/messages/count_tokens")
    server.fail(status=529, route="/v1/models")
    server.fail(status=500, route="/v1/models/{model_id}")
    with pytest.raises(anthropic.ServiceUnavailableError, match="counting is down"):
        sdk.messages.count_tokens(model=MODEL, messages=user("hi"))
    with pytest.raises(anthropic.OverloadedError):
        sdk.models.list()
    with pytest.raises(anthropic.InternalServerError):
        sdk.models.retrieve(MODEL)
    # each fault was for its own route: the next calls, and messages, all succeed
    assert sdk.messages.count_tokens(model=MODEL, messages=user("hi")).input_tokens > 0
    assert len(list(sdk.models.list())) == len(MODELS)
    assert sdk.models.retrieve(MODEL).id == MODEL
    assert text_of(sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))) == expected_answer(server)


def test_sdk_retries_a_count_through_a_scripted_fault(server: StandIn) -> None:
    server.fail(status=529, retry_after_ms=1, times=2, route="/v1/messages/count_tokens")
    with anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=server.base_url, max_retries=2) as sdk:
        assert sdk.messages.count_tokens(model=MODEL, messages=user("hi")).input_tokens > 0
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]


def test_faults_by_call_number_count_per_route() -> None:
    with StandIn() as fresh, anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=fresh.base_url, max_retries=0) as sdk:
        fresh.fail(status=500, on_call=2, route="/v1/models")
        fresh.fail(status=529, on_call=1)  # the first message call
        sdk.models.list()
        with pytest.raises(anthropic.OverloadedError):
            sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
        with pytest.raises(anthropic.InternalServerError):
            sdk.models.list()  # the second call of this route, whatever came between
        sdk.models.list()
        sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))


def test_fail_refuses_what_a_route_cannot_do(server: StandIn) -> None:
    with pytest.raises(ValueError, match="/v1/files"):
        server.fail(status=500, route="/v1/files")
    with pytest.raises(ValueError, match="drop_after"):
        server.fail(drop_after=2, route="/v1/models")


# --- retry-after as an HTTP date --------------------------------------------------------------


def whole_seconds_from_now(seconds: int) -> datetime:
    """A time on a whole second (an HTTP date has no fractions), ``seconds`` or a little less ahead."""
    return datetime.fromtimestamp(math.floor(time.time()) + seconds, timezone.utc)


def test_retry_after_as_an_http_date(http: httpx.Client, server: StandIn) -> None:
    when = whole_seconds_from_now(30)
    server.fail(status=429, retry_after=when)
    response = http.post("/v1/messages", headers=api_headers(), json=message_body())
    assert response.status_code == 429
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", response.headers["retry-after"])
    assert parsedate_to_datetime(response.headers["retry-after"]) == when


def test_sdk_honours_retry_after_as_an_http_date(server: StandIn) -> None:
    when = whole_seconds_from_now(3)
    server.fail(status=429, retry_after=when)
    with anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=server.base_url, max_retries=1) as sdk:
        asked = when.timestamp() - time.time()  # more than any first backoff (at most 0.5 s)
        started = time.monotonic()
        message = sdk.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
        elapsed = time.monotonic() - started
    assert text_of(message) == expected_answer(server)
    assert len(server.message_requests) == 2
    assert asked - 0.1 <= elapsed < asked + 1.5
def test_a_request_too_large_is_refused_unread_and_recorded_with_its_size(http: httpx.Client, server: StandIn) -> None:
    small = http.post("/v1/messages", headers=api_headers(), json={"model": MODEL, "max_tokens": 64, "messages": user("hi")})
    assert small.status_code == 200 and server.requests[-1].size == int(small.request.headers["content-length"])
    too_large = 32 * 1024 * 1024 + 1
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # headers only: the API answers before the body
        lines = ["POST /v1/messages HTTP/1.1", "host: stand-in", f"content-length: {too_large}", *(f"{k}: {v}" for k, v in api_headers().items())]
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        assert raw.makefile("rb").readline().startswith(b"HTTP/1.1 413")
    assert (server.requests[-1].size, server.requests[-1].body) == (too_large, None)


def test_connections_are_accepted_without_nagles_algorithm() -> None:
    """With it, an answer's last small write waits for the client's delayed ACK (~40 ms on
    Linux), which every latency measured against the stand-in would include."""
    from claude_magic.testing.handler import Handler, Server

    server = Server(("127.0.0.1", 0), Handler)
    try:
        with socket.create_connection(server.server_address[:2]):
            connection, _ = server.get_request()
            with connection:
                assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.server_close()


# --- documents and citations ------------------------------------------------------------------


def pdf_document(pages: list[str], *, cite: bool = True, title: str = "report.pdf") -> dict[str, Any]:
    from claude_magic.testing.pdf import write_pdf

    data = base64.b64encode(write_pdf(pages)).decode()
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}, "title": title, "citations": {"enabled": cite}}


REPORT = ["Quarterly report\nRevenue grew 12% in March.", "Costs\nStaff costs fell by 3% over the quarter."]


@pytest.mark.parametrize("streamed", [True, False])
def test_sdk_reads_a_cited_answer_with_page_locations_into_the_pdfs_text(sdk: anthropic.Anthropic, streamed: bool) -> None:
    messages = user([pdf_document(REPORT), {"type": "text", "text": "What happened to staff costs?"}])
    if streamed:
        with sdk.messages.stream(model=MODEL, max_tokens=500, messages=messages) as stream:
            streamed_text = "".join(stream.text_stream)
            message = stream.get_final_message()
        assert streamed_text == "".join(b.text for b in message.content if isinstance(b, anthropic.types.TextBlock))
    else:
        message = sdk.messages.create(model=MODEL, max_tokens=500, messages=messages)
    cited = [b for b in message.content if isinstance(b, anthropic.types.TextBlock) and b.citations]
    assert len(cited) == 1 and cited[0].text == "Staff costs fell by 3% over the quarter. "
    (citation,) = cited[0].citations or []
    assert isinstance(citation, anthropic.types.CitationPageLocation)
    assert (citation.start_page_number, citation.end_page_number, citation.document_index, citation.document_title) == (2, 3, 0, "report.pdf")
    assert citation.cited_text in REPORT[1]


def test_sdk_reads_char_locations_that_point_into_a_text_document(sdk: anthropic.Anthropic) -> None:
    text = "Our notes. The sky was blue all week. Sales rose in Oslo."
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}, "title": "notes.txt", "citations": {"enabled": True}}
    message = sdk.messages.create(model=MODEL, max_tokens=500, messages=user([document, {"type": "text", "text": "Where did sales rise?"}]))
    citations = [c for b in message.content if isinstance(b, anthropic.types.TextBlock) for c in b.citations or []]
    assert citations and all(isinstance(c, anthropic.types.CitationCharLocation) for c in citations)
    assert all(text[c.start_char_index : c.end_char_index] == c.cited_text for c in citations)  # type: ignore[union-attr]
    assert citations[0].cited_text == "Sales rose in Oslo."


def test_sdk_sends_a_cited_answer_back_under_2026_10_21(sdk: anthropic.Anthropic, server: StandIn) -> None:
    question = user([pdf_document(REPORT), {"type": "text", "text": "What happened to staff costs?"}])
    answer = sdk.messages.create(model=MODEL, max_tokens=500, messages=question)
    follow_up: list[anthropic.types.MessageParam] = [*question, {"role": "assistant", "content": answer.content}, {"role": "user", "content": "Why?"}]  # type: ignore[typeddict-item]
    sdk.messages.create(model=MODEL, max_tokens=500, messages=follow_up)
    assert server.message_requests[-1].headers["anthropic-version"] == "2026-10-21"
    assert any(b.get("citations") for b in server.message_requests[-1].messages[1]["content"])


@pytest.mark.parametrize(
    ("content", "version", "message"),
    [
        ([{**pdf_document(["x"]), "source": {"type": "base64", "media_type": "text/plain", "data": "eA=="}}], "2023-06-01", "media_type: Input should be 'application/pdf'"),
        ([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "bm90IGEgcGRm"}}], "2023-06-01", "The PDF specified was not valid."),
        ([pdf_document([f"p{n}" for n in range(60)]), pdf_document([f"q{n}" for n in range(60)])], "2023-06-01", "A maximum of 100 PDF pages may be provided. Found 120."),
        ([pdf_document(["a"]), pdf_document(["b"], cite=False)], "2023-06-01", "Citations must be enabled on all documents or on none of them."),
        ([{**pdf_document(["a"]), "citations": {"enabled": "yes"}}], "2023-06-01", "document.citations: Input should be an object with a boolean 'enabled'"),
        ([{"type": "text", "text": "q", "citations": [{"type": "char_location", "cited_text": "q"}]}], "2026-10-21", "citations are not permitted in user messages"),
    ],
)
def test_document_validation(http: httpx.Client, content: list[dict[str, Any]], version: str, message: str) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": [*content, {"type": "text", "text": "Read."}]}]}
    assert_error(http.post("/v1/messages", headers=api_headers(version), json=body), 400, "invalid_request_error", message)


def test_a_document_in_an_assistant_turn_is_refused_under_2026_10_21_only(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [pdf_document(["a"], cite=False)]}, {"role": "user", "content": "Go on"}]
    body = {"model": MODEL, "max_tokens": 10, "messages": messages}
    assert http.post("/v1/messages", headers=api_headers("2023-06-01"), json=body).status_code == 200
    assert_error(http.post("/v1/messages", headers=api_headers("2026-10-21"), json=body), 400, "invalid_request_error", "document blocks are not permitted in assistant messages")


# --- the API's own tools: web search and fetch, MCP servers ------------------------------------------

WEB_TOOLS: list[Any] = [{"type": "web_search_20260318", "name": "web_search", "max_uses": 3}, {"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 3}]


@pytest.mark.parametrize("streamed", [True, False])
def test_sdk_reads_a_web_search_its_results_and_the_cited_answer(sdk: anthropic.Anthropic, server: StandIn, streamed: bool) -> None:
    params: Any = {"model": MODEL, "max_tokens": 500, "messages": user("What is the weather in Oslo?"), "tools": WEB_TOOLS}
    if streamed:
        with sdk.messages.stream(**params) as stream:
            message = stream.get_final_message()
    else:
        message = sdk.messages.create(**params)
    call, result = message.content[1], message.content[2]
    assert isinstance(call, anthropic.types.ServerToolUseBlock) and call.name == "web_search" and call.input == {"query": "What is the weather in Oslo?"}
    assert isinstance(result, anthropic.types.WebSearchToolResultBlock) and result.tool_use_id == call.id
    assert isinstance(result.content, list) and len(result.content) == 3 and all(r.encrypted_content for r in result.content)
    citations = [c for b in message.content if isinstance(b, anthropic.types.TextBlock) for c in b.citations or []]
    assert [type(c) for c in citations] == [anthropic.types.CitationsWebSearchResultLocation] * 2
    assert [c.url for c in citations] == [r.url for r in result.content[:2]]  # type: ignore[union-attr]
    assert message.usage.server_tool_use is not None and message.usage.server_tool_use.web_search_requests == 1
    assert message.stop_reason == "end_turn"


def test_sdk_continues_a_paused_turn_and_a_changed_result_is_refused(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.web.pause = 1
    question = user("Read https://example.com/a.html please")
    paused = sdk.messages.create(model=MODEL, max_tokens=500, messages=question, tools=WEB_TOOLS)
    assert paused.stop_reason == "pause_turn" and isinstance(paused.content[-1], anthropic.types.WebFetchToolResultBlock)
    assert paused.usage.server_tool_use is not None and paused.usage.server_tool_use.web_fetch_requests == 1
    going_on: Any = [*question, {"role": "assistant", "content": paused.content}]
    rest = sdk.messages.create(model=MODEL, max_tokens=500, messages=going_on, tools=WEB_TOOLS)
    assert rest.stop_reason == "end_turn" and "According to example.com, the answer is 42." in text_of_first(rest)
    searched = sdk.messages.create(model=MODEL, max_tokens=500, messages=user("Weather?"), tools=WEB_TOOLS)
    changed = [b.model_dump() for b in searched.content]
    changed[2]["content"][0]["title"] = "Something else"
    with pytest.raises(anthropic.BadRequestError, match="encrypted_content: does not match"):
        sdk.messages.create(model=MODEL, max_tokens=500, messages=[*user("Weather?"), {"role": "assistant", "content": changed}, *user("More")], tools=WEB_TOOLS)


def test_sdk_calls_an_mcp_server_through_the_beta_connector(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.web.mcp_results["books"] = "Invoice 42: 1,200 EUR."
    servers: Any = [{"type": "url", "url": "https://mcp.example.com/mcp", "name": "books", "authorization_token": "tok"}]
    toolset: Any = {"type": "mcp_toolset", "mcp_server_name": "books", "default_config": {"enabled": False}, "configs": {"find": {"enabled": True}}}
    message = sdk.beta.messages.create(model=MODEL, max_tokens=500, messages=user("Find the March invoices"), mcp_servers=servers, tools=[toolset], betas=["mcp-client-2025-11-20"])
    call, result = message.content[1], message.content[2]
    assert isinstance(call, anthropic.types.beta.BetaMCPToolUseBlock) and (call.name, call.server_name) == ("find", "books")
    assert isinstance(result, anthropic.types.beta.BetaMCPToolResultBlock) and result.tool_use_id == call.id and not result.is_error
    assert "The MCP server answered: Invoice 42: 1,200 EUR." in "".join(b.text for b in message.content if isinstance(b, anthropic.types.beta.BetaTextBlock))
    assert server.message_requests[-1].body["mcp_servers"][0]["authorization_token"] == "tok"


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        ({"tools": [{"type": "web_search_20990101", "name": "web_search"}]}, {}, "unknown tool type 'web_search_20990101'"),
        ({"tools": [{"type": "web_search_20260318", "name": "search"}]}, {}, "name: Input should be 'web_search'"),
        ({"tools": [{"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 0}]}, {}, "max_uses: Input should be greater than or equal to 1"),
        ({"model": "claude-haiku-4-5", "tools": [{"type": "web_search_20260318", "name": "web_search"}]}, {}, "'web_search_20260318' is not supported on claude-haiku-4-5"),
        ({"mcp_servers": [{"type": "url", "url": "https://x.org/m", "name": "x"}]}, {}, "the MCP connector needs the anthropic-beta header"),
        ({"mcp_servers": [{"type": "url", "url": "http://x.org/m", "name": "x"}]}, {"anthropic-beta": "mcp-client-2025-11-20"}, "must start with https://"),
        ({"mcp_servers": [], "tools": [{"type": "mcp_toolset", "mcp_server_name": "y"}]}, {"anthropic-beta": "mcp-client-2025-11-20"}, "which mcp_servers does not define"),
    ],
)
def test_server_tool_validation(http: httpx.Client, body: dict[str, Any], headers: dict[str, str], message: str) -> None:
    request = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}], **body}
    assert_error(http.post("/v1/messages", headers={**api_headers(), **headers}, json=request), 400, "invalid_request_error", message)
