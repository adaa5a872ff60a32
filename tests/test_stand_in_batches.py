"""The stand-in's Message Batches and structured outputs, as the official ``anthropic`` SDK sees them
(it must find the stand-in to be the API), and the rules it applies to them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from claude_magic.testing import StandIn
from claude_magic.testing.pytest_plugin import STAND_IN_KEY

MODEL = "claude-haiku-5-5"
SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "mixed"]}, "summary": {"type": "string"}},
    "required": ["sentiment", "summary"],
    "additionalProperties": False,
}


@pytest.fixture
def server(shared_stand_in: StandIn) -> Iterator[StandIn]:
    shared_stand_in.batches.speed = 1.0
    yield shared_stand_in
    shared_stand_in.batches.speed = 1.0


@pytest.fixture
def http(server: StandIn) -> Iterator[httpx.Client]:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": STAND_IN_KEY}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        yield client


def request(custom_id: str, prompt: str, **params: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": prompt}], **params}}


def test_sdk_batch_create_retrieve_and_results(sdk: anthropic.Anthropic, server: StandIn, http: httpx.Client) -> None:
    server.batches.speed = 0.0  # the batch clock stands still until the test moves it
    batch = sdk.messages.batches.create(requests=[request("a", "first"), request("b", "second"), request("c", "third", max_tokens=-1)])  # type: ignore[list-item]
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
    assert batch.results_url is None and batch.expires_at > batch.created_at
    assert http.get(f"/v1/messages/batches/{batch.id}/results").status_code == 404  # the SDK would not even ask
    server.batches.advance(60)
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None and ended.results_url is not None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 2, 1)
    results = {r.custom_id: r.result for r in sdk.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded" and "first" in results["a"].message.content[0].text  # type: ignore[union-attr]
    assert results["a"].message.usage.service_tier == "batch"  # type: ignore[union-attr]
    assert results["c"].type == "errored" and "max_tokens" in results["c"].error.error.message  # type: ignore[union-attr]


def test_sdk_batch_list_cancel_and_delete(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.batches.speed = 0.0
    ids = [sdk.messages.batches.create(requests=[request("only", f"question {i}")]).id for i in range(3)]  # type: ignore[list-item]
    assert [b.id for b in sdk.messages.batches.list(limit=2)] == list(reversed(ids))  # newest first, every page
    with pytest.raises(anthropic.ConflictError):
        sdk.messages.batches.delete(ids[0])  # still in progress
    canceling = sdk.messages.batches.cancel(ids[0])
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    server.batches.advance(1)
    canceled = sdk.messages.batches.retrieve(ids[0])
    assert canceled.processing_status == "ended" and canceled.request_counts.canceled == 1
    assert [r.result.type for r in sdk.messages.batches.results(ids[0])] == ["canceled"]
    assert sdk.messages.batches.delete(ids[0]).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.batches.retrieve(ids[0])


def test_a_batch_expires_after_a_day_and_is_archived_after_29(sdk: anthropic.Anthropic, server: StandIn) -> None:
    server.batches.speed, server.batches.processing_seconds = 0.0, 2 * 86400
    try:
        batch = sdk.messages.batches.create(requests=[request("x", "slow")])  # type: ignore[list-item]
        server.batches.advance(86400)
        assert sdk.messages.batches.retrieve(batch.id).request_counts.expired == 1
        server.batches.advance(29 * 86400)
        archived = sdk.messages.batches.retrieve(batch.id)
        assert archived.archived_at is not None and archived.results_url is None
    finally:
        server.batches.processing_seconds = 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"requests": []}, "requests: a batch holds 1 to 100,000 requests", id="empty"),
        pytest.param({"requests": [request("a b", "x")]}, "requests.0.custom_id: String should match pattern", id="custom-id"),
        pytest.param({"requests": [request("a", "x"), request("a", "y")]}, "requests.1.custom_id: 'a' is not unique", id="duplicate"),
        pytest.param({"requests": [request("a", "x", stream=True)]}, "requests.0.params.stream", id="stream"),
        pytest.param({"requests": [{"custom_id": "a"}]}, "requests.0.params: Input should be a valid dictionary", id="no-params"),
    ],
)
def test_batch_creation_is_validated(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = http.post("/v1/messages/batches", json=body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_a_scripted_fault_errors_one_request_of_a_batch(http: httpx.Client, server: StandIn) -> None:
    server.batches.speed = 1000.0
    server.fail(status=529)
    batch = http.post("/v1/messages/batches", json={"requests": [request("a", "one"), request("b", "two")]}).json()
    lines = http.get(f"/v1/messages/batches/{batch['id']}/results").text.splitlines()
    results = {json.loads(line)["custom_id"]: json.loads(line)["result"] for line in lines}
    assert results["a"]["error"]["error"]["type"] == "overloaded_error" and results["b"]["type"] == "succeeded"


# --- structured outputs -----------------------------------------------------------------------------


def test_sdk_structured_output_follows_the_schema(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Great phone, bad battery"}], output_config={"format": {"type": "json_schema", "schema": SCHEMA}}
    )
    answer = json.loads(message.content[0].text)  # type: ignore[union-attr]
    assert answer["sentiment"] in ("positive", "negative", "mixed") and answer["summary"] == "Great phone, bad battery"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param({**SCHEMA, "additionalProperties": True}, "'additionalProperties' must be explicitly set to false", id="open"),
        pytest.param({**SCHEMA, "properties": {"n": {"type": "integer", "minimum": 0}}}, "'minimum' is not supported", id="bound"),
        pytest.param({**SCHEMA, "properties": {"n": {"$ref": "#/$defs/N"}}}, "does not resolve", id="dangling"),
        pytest.param(
            {**SCHEMA, "properties": {"n": {"$ref": "#/$defs/N"}}, "$defs": {"N": {"type": "object", "properties": {"m": {"$ref": "#/$defs/N"}}, "additionalProperties": False}}},
            "recursive schemas are not supported",
            id="recursive",
        ),
    ],
)
def test_structured_output_schemas_are_validated(http: httpx.Client, schema: dict[str, Any], message: str) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "x"}], "output_config": {"format": {"type": "json_schema", "schema": schema}}}
    response = http.post("/v1/messages", json=body)
    assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_a_model_without_structured_outputs_refuses_them(http: httpx.Client, server: StandIn) -> None:
    server.models.insert(0, {**server.models[0], "id": "claude-plain", "capabilities": {"structured_outputs": {"supported": False}, "thinking": {"types": {}}}})
    body = {"model": "claude-plain", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}], "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
    response = http.post("/v1/messages", json=body)
    assert response.status_code == 400 and "structured outputs are not supported for claude-plain" in response.json()["error"]["message"]
