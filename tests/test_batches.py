"""Jobs over rows as Message Batches: the client's batch calls and bodies, and in real kernels the
batch path: submitted, kept across a kernel restart, waited for, brought back; canceled; chosen
above a row count; each request sent once."""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_harness import CellResult, Kernel, stand_in_environment

from claude_magic.api.batches import Batches, batch_bodies
from claude_magic.api.client import Client
from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core.pricing import cost
from claude_magic.testing import StandIn

KEY = "sk-ant-batches-test-key-1b2c3d4e5f"
NOTEBOOK = "/work/reviews.ipynb"
SETUP = """
%load_ext claude_magic
%config ClaudeMagics.batch_poll_seconds = 0.2
%config ClaudeMagics.confirm_above_usd = None
import claude_magic, pandas as pd
from typing import Literal
from pydantic import BaseModel

class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "mixed"]
    summary: str

reviews = pd.DataFrame({"review": [f"review {i}" for i in range(50)]}, index=[f"r{i}" for i in range(50)])
"""
JOB = "result = claude_magic.map('Classify this review: {review}', reviews, schema=Sentiment, batch=True)"


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn(api_key=KEY) as stand_in:
        yield stand_in


def kernel(server: StandIn, home: Path) -> Kernel:
    k = Kernel(stand_in_environment(server.base_url, KEY, home, NOTEBOOK))
    assert k.run(SETUP).status == "ok"
    return k


def value(k: Kernel, expression: str) -> object:
    result = k.run(f"print(repr({expression}))")
    assert result.status == "ok", result.outputs
    return ast.literal_eval(result.stdout.strip())


def created(server: StandIn) -> list[str]:
    return [r.path for r in server.requests if r.method == "POST" and r.path == "/v1/messages/batches"]


def interrupt_once_submitted(k: Kernel, server: StandIn, cell: str) -> CellResult:
    """Run ``cell``, and interrupt it once its batch is submitted and has been looked at."""
    msg_id = k.submit(cell)
    deadline = time.monotonic() + 30
    while not any(r.method == "GET" and "/v1/messages/batches/" in r.path for r in server.requests) and time.monotonic() < deadline:
        time.sleep(0.02)
    k.interrupt()
    return k.collect(msg_id, timeout=30)


# --- the client ---------------------------------------------------------------------------------------


def test_bodies_are_split_within_the_request_count_and_the_bytes() -> None:
    requests = [(f"id{i}", {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x" * 100}]}) for i in range(10)]
    by_count = list(batch_bodies(requests, max_requests=4))
    assert [body.ids for body in by_count] == [["id0", "id1", "id2", "id3"], ["id4", "id5", "id6", "id7"], ["id8", "id9"]]
    assert [r["custom_id"] for r in json.loads(bytes(by_count[1]))["requests"]] == ["id4", "id5", "id6", "id7"]
    assert all(len(bytes(body)) == body.length for body in by_count)
    by_bytes = list(batch_bodies(requests, max_bytes=600))
    assert all(len(bytes(body)) <= 600 for body in by_bytes) and sum(len(body.ids) for body in by_bytes) == 10 and len(by_bytes) > 2
    with pytest.raises(ValueError, match="more than a batch may hold"):
        list(batch_bodies(requests, max_bytes=100))


def test_the_client_creates_polls_reads_cancels_and_deletes(server: StandIn) -> None:
    server.batches.speed = 0.0
    settings = ClientSettings(credentials=Credentials(api_key=KEY), base_url=server.base_url)
    with Client(settings) as client:
        batches = Batches(client)
        (body,) = batch_bodies([(k, {"model": "claude-haiku-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": k}]}) for k in ("a", "b")])
        batch = batches.create(body)
        assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
        server.batches.advance(5)
        assert batches.retrieve(batch.id).ended
        assert sorted(line["custom_id"] for line in batches.results(batch.id)) == ["a", "b"]
        other = batches.create(body)
        assert [b.id for b in batches.list(page_size=1)] == [other.id, batch.id]
        assert batches.cancel(other.id).processing_status == "canceling"
        batches.delete(batch.id)
        assert [b.id for b in batches.list()] == [other.id]


def test_a_batch_request_costs_half() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    full = cost("claude-sonnet-5-5", usage)
    assert full is not None and cost("claude-sonnet-5-5", {**usage, "service_tier": "batch"}) == pytest.approx(full / 2)


# --- in a kernel ----------------------------------------------------------------------------------------


@pytest.mark.kernel
def test_the_batch_path_submits_survives_a_restart_and_brings_the_results_back(server: StandIn, tmp_path: Path) -> None:
    server.batches.speed = 0.0  # the batch stays in progress until the test moves its clock
    with kernel(server, tmp_path) as k:
        first = interrupt_once_submitted(k, server, JOB)
        assert first.status == "ok", first.outputs
        (batch_id,) = re.findall(r"submitted (msgbatch_\w+) \(50 rows\)", first.stdout)
        assert "stopped waiting" in first.stdout and value(k, "result.error.iloc[0]").startswith(f"in {batch_id}, which has not ended")
        assert not server.message_requests and len(created(server)) == 1
    body = [r for r in server.requests if r.path == "/v1/messages/batches"][0].body
    params = body["requests"][0]["params"]
    assert "stream" not in params and params["output_config"]["format"]["type"] == "json_schema" and len(body["requests"]) == 50
    with kernel(server, tmp_path) as restarted:
        listed = restarted.run("claude_magic.batches()").displays()[0]["data"]["text/plain"]
        assert batch_id in listed and "in_progress" in listed and "Classify this review: {review}" in listed
        server.batches.advance(60)
        again = restarted.run(JOB)
        assert again.status == "ok", again.outputs
        assert f"50 of these rows are in {batch_id}, submitted earlier: waiting for it" in again.stdout and len(created(server)) == 1  # not submitted twice
        assert value(restarted, "list(result.index) == list(reviews.index)") is True
        assert value(restarted, "bool((result.summary == 'Classify this review: ' + reviews.review).all())") is True
        assert value(restarted, "bool(result.error.isna().all())") is True
        assert value(restarted, "claude_magic.batch_result(" + repr(batch_id) + ").equals(result)") is True
        before = len(server.requests)
        restarted.run("row_by_row = claude_magic.map('Classify this review: {review}', reviews, schema=Sentiment, batch=False)")
        assert [r.path for r in server.requests[before:] if r.method == "POST"] == []  # every answer kept: nothing sent


@pytest.mark.kernel
def test_a_canceled_batch_leaves_its_rows_to_the_next_run(server: StandIn, tmp_path: Path) -> None:
    server.batches.speed = 0.0
    with kernel(server, tmp_path) as k:
        (batch_id,) = re.findall(r"submitted (msgbatch_\w+)", interrupt_once_submitted(k, server, JOB).stdout)
        assert "is canceling" in k.run(f"claude_magic.cancel_batch({batch_id!r})").stdout
        server.batches.advance(1)
        k.run(f"canceled = claude_magic.batch_result({batch_id!r})")
        assert value(k, "canceled.error.iloc[0]") == "not answered: the batch was canceled; run again to send this row"
        server.batches.speed = 1000.0
        assert k.run(JOB).status == "ok" and len(created(server)) == 2  # the canceled rows go again
        assert value(k, "bool(result.error.isna().all())") is True


@pytest.mark.kernel
def test_a_job_above_batch_above_rows_goes_as_a_batch_and_the_cell_form_takes_batch(server: StandIn, tmp_path: Path) -> None:
    server.batches.speed = 1000.0
    with kernel(server, tmp_path) as k:
        k.run("%config ClaudeMagics.batch_above_rows = 15")
        assert k.run("small = claude_magic.map('Say {review}', reviews.head(10))").status == "ok"
        assert len(server.message_requests) == 10 and not created(server)
        assert k.run("big = claude_magic.map('Say {review}', reviews.head(30))").status == "ok"
        assert len(server.message_requests) == 10 and len(created(server)) == 1
        assert value(k, "bool(big.error.isna().all()) and len(big)") == 30
        k.run("tail = reviews.tail(5)")
        run = k.run("%%claude --each tail --batch -o tail_answers\nSummarise: {review}")
        assert run.status == "ok" and len(created(server)) == 2 and value(k, "len(tail_answers)") == 5
