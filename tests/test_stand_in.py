"""The stand-in's fidelity: the official ``anthropic`` SDK, as a client, must find it to be the
API (its streams, pages, counts and errors), and it must apply the API's validation rules."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from claude_magic.testing import StandIn
from claude_magic.testing.answers import STAND_IN_NOTE, answer_for, split_into_deltas
from claude_magic.testing.models import MODELS
from claude_magic.testing.pytest_plugin import STAND_IN_KEY
from claude_magic.testing.server import input_tokens

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
def sdk(server: StandIn) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=server.base_url, max_retries=0)
    yield client
    client.close()


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
    from claude_magic.testing.server import _Handler, _Server

    server = _Server(("127.0.0.1", 0), _Handler)
    try:
        with socket.create_connection(server.server_address[:2]):
            connection, _ = server.get_request()
            with connection:
                assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        server.server_close()
