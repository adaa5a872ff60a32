"""claude-magic's Jupyter server extension in a real ``jupyter server`` process, against the stand-in.

One server for the module (see ``server_harness.py``): the extension enabled by config, the key in
its environment, the stand-in its upstream, DEBUG logging. Kernels are started through the server's
REST API: as a notebook's session (what JupyterLab and Notebook 7 do) and as ``POST /api/kernels``
(which passes no environment); the tests run cells in them and check what the user sees, what
reached the stand-in, and what the proxy answers to requests made by hand.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import sys
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_harness import JupyterServer, jupyter_server, terminal_output

from claude_magic.core.store import ConversationStore
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-server-held-key-7f3e9d1c5a"
MAX_REQUEST_BYTES = 1_000_000
SETTINGS = {"max_request_bytes": MAX_REQUEST_BYTES}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with StandIn(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stand_in: StandIn) -> Iterator[JupyterServer]:
    with jupyter_server(tmp_path_factory.mktemp("jupyter"), upstream=stand_in.base_url, key=KEY, settings=SETTINGS) as running:
        yield running


@pytest.fixture(scope="module")
def notebook(server: JupyterServer) -> tuple[str, object]:
    """A notebook's kernel, started by a session as JupyterLab starts it."""
    server.write_notebook("analysis.ipynb")
    return server.open_notebook("analysis.ipynb")


@pytest.fixture(scope="module")
def script_kernel(server: JupyterServer) -> tuple[str, object]:
    """A kernel started by ``POST /api/kernels``, which passes no environment."""
    return server.start_kernel()


@pytest.fixture(autouse=True)
def fresh(stand_in: StandIn) -> None:
    stand_in.reset()


def token_of(kernel: object) -> str:
    return kernel.run("import os; print(os.environ['ANTHROPIC_AUTH_TOKEN'])").stdout.strip()  # type: ignore[attr-defined]


def proxy_call(server: JupyterServer, method: str, path: str, token: str | None, **options: object) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01", **({"authorization": f"Bearer {token}"} if token else {}), **options.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.request(method, f"{server.proxy}{path}", headers=headers, timeout=30, **options)  # type: ignore[arg-type]


def message_body(text: str, **more: object) -> dict[str, object]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}], **more}


# --- the key stays in the server ------------------------------------------------------------------


def test_kernels_have_no_key_and_their_answers_stream_through_the_proxy(server: JupyterServer, stand_in: StandIn, notebook: tuple[str, object], script_kernel: tuple[str, object]) -> None:
    for _, kernel in (notebook, script_kernel):
        shown = kernel.run("import os; print(sorted(k for k in os.environ if k.startswith(('ANTHROPIC', 'CLAUDE_MAGIC_PROXY'))), os.environ['ANTHROPIC_BASE_URL'])").stdout  # type: ignore[attr-defined]
        assert shown.split("] ")[0] + "]" == "['ANTHROPIC_AUTH_TOKEN', 'ANTHROPIC_BASE_URL', 'CLAUDE_MAGIC_PROXY']"
        assert shown.split("] ")[1].strip() == server.proxy

    _, kernel = notebook
    stand_in.fail(delay=0.04)
    result = kernel.run("%%claude\nHello through the proxy [[words=40]]")  # type: ignore[attr-defined]
    assert result.status == "ok", result.error
    updates = [m for m in result.of_type("update_display_data") if "text/markdown" in m["content"]["data"]]
    assert len(updates) >= 5, "the answer arrived in one piece: the proxy buffered the stream"
    sent = stand_in.message_requests[-1]
    assert result.markdown()[0].startswith(" ".join(sent.answer.split()[:8]))
    assert sent.headers["x-api-key"] == KEY and "authorization" not in sent.headers
    assert sent.body["stream"] is True
    assert KEY not in result.everything()


def test_a_terminal_the_server_starts_has_no_key_either(server: JupyterServer) -> None:
    shown = asyncio.run(server_terminal_output(server, """printf 'key:%s:\\n' "${ANTHROPIC_API_KEY:-none}" """, "key:none:"))
    assert KEY not in shown and "key:none:" in shown, shown


async def server_terminal_output(server: JupyterServer, command: str, expected: str) -> str:
    """What a terminal of the server shows after ``command`` (until ``expected`` shows, 20 s at most)."""
    name = server.api("POST", "/api/terminals")["name"]
    try:
        return await terminal_output(server.url.replace("http://", "ws://") + f"/terminals/websocket/{name}?token={server.token}", command, expected)
    finally:
        server.api("DELETE", f"/api/terminals/{name}")


def test_config_says_the_server_holds_the_key_and_a_key_of_ones_own_goes_direct(notebook: tuple[str, object]) -> None:
    _, kernel = notebook
    shown = kernel.run("%claude config").displays()[0]["data"]["text/plain"]  # type: ignore[attr-defined]
    assert re.search(r"^api_key +\(held by the Jupyter server\)", shown, re.MULTILINE), shown
    assert "the Jupyter server (claude_magic extension)" in shown
    own = kernel.run(  # type: ignore[attr-defined]
        "%config ClaudeMagics.api_key = 'sk-ant-users-own-key-0000'\n"
        "print(get_ipython().magics_manager.registry['ClaudeMagics'].client_settings().base_url)\n"
        "%config ClaudeMagics.api_key = None"
    )
    assert own.stdout.strip() == "https://api.anthropic.com"


def test_the_proxy_refuses_what_is_not_a_running_kernels_api_call(server: JupyterServer, stand_in: StandIn, notebook: tuple[str, object]) -> None:
    kernel_id, kernel = notebook
    token = token_of(kernel)
    for credential in (None, KEY, server.token, f"cmk-{kernel_id}.forged", token[:-2] + "xx", "cmk-another-kernel." + token.rsplit(".", 1)[1]):
        answer = proxy_call(server, "POST", "/v1/messages", credential, json=message_body("hi"))
        assert answer.status_code == 401, credential
        assert answer.json()["error"]["type"] == "authentication_error"
        assert answer.headers["x-should-retry"] == "false"
    for method, path in [("GET", "/v1/messages/batches"), ("POST", "/v1/complete"), ("GET", "/v1/models/..%2F..%2Fapi%2Fcontents"), ("GET", "/api/contents"), ("DELETE", "/v1/models"), ("POST", "/v1/models")]:
        answer = proxy_call(server, method, path, token)
        assert answer.status_code in (404, 405), (method, path, answer.status_code)
        assert answer.json()["type"] == "error", (method, path)
    too_big = proxy_call(server, "POST", "/v1/messages", token, json=message_body("x" * MAX_REQUEST_BYTES))
    assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "request_too_large"
    assert stand_in.requests == []

    absolute = raw_request(server, f"GET http://evil.example/claude-magic/v1/models HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {token}\r\n")
    assert absolute.startswith((b"HTTP/1.1 403", b"HTTP/1.1 404"))  # jupyter's own refusal: not a route of the proxy
    assert stand_in.requests == []
    other_host = proxy_call(server, "GET", "/v1/models", token, headers={"host": "evil.example"})
    assert other_host.status_code == 200 and other_host.json()["data"]
    assert [(r.method, r.path, r.headers["host"]) for r in stand_in.requests] == [("GET", "/v1/models", stand_in.base_url.split("//")[1])]


def raw_request(server: JupyterServer, head: str) -> bytes:
    host, port = server.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"{head}Connection: close\r\n\r\n".encode())
        return b"".join(iter(lambda: connection.recv(65536), b""))


def test_the_key_is_in_no_output_log_row_or_response(server: JupyterServer, stand_in: StandIn, notebook: tuple[str, object]) -> None:
    kernel_id, kernel = notebook
    seen = [kernel.run("import os; print(dict(os.environ))"), kernel.run("%claude config"), kernel.run("%claude Tell me a secret [[echo]]")]  # type: ignore[attr-defined]
    stand_in.fail(status=401, message="invalid x-api-key")
    seen.append(kernel.run("%claude --no-history this one is refused"))  # type: ignore[attr-defined]
    assert seen[-1].error is not None
    token = token_of(kernel)
    responses = [
        proxy_call(server, "POST", "/v1/messages", token, json=message_body("direct", stream=True)),
        proxy_call(server, "POST", "/v1/messages/count_tokens", token, json={"model": "claude-sonnet-5-5", "messages": [{"role": "user", "content": "hi"}]}),
        proxy_call(server, "GET", "/v1/models", token),
        proxy_call(server, "GET", "/v1/models/claude-sonnet-5-5", token),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    assert responses[0].headers.get_list("content-type") == ["text/event-stream; charset=utf-8"], "one Content-Type, set not added"
    assert responses[0].headers["request-id"].startswith("req_standin_")
    for result in seen:
        assert KEY not in result.everything()
    for response in responses:
        assert KEY not in response.text and KEY not in str(response.headers)
    assert KEY not in server.log.read_text()
    assert "DEBUG" in server.log.read_text() or "[D " in server.log.read_text()
    for part in server.home.glob("ledger.sqlite3*"):
        assert KEY.encode() not in part.read_bytes()
    rows = ledger_rows(server)
    mine = [row for row in rows if row["kernel"] == kernel_id]
    assert {row["notebook"] for row in mine} == {"analysis.ipynb"}
    assert {row["status"] for row in mine} >= {200, 401}
    answered = [row for row in mine if row["status"] == 200]
    assert all(row["model"] == "claude-sonnet-5-5" and row["input_tokens"] > 0 and row["output_tokens"] > 0 for row in answered)
    assert all(row["request_id"].startswith("req_standin_") for row in mine)


def ledger_rows(server: JupyterServer) -> list[dict[str, object]]:
    with sqlite3.connect(server.home / "ledger.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM requests ORDER BY id")]


# --- what comes back from the upstream ------------------------------------------------------------


def test_an_upstream_429_holds_every_kernels_next_request_and_the_cell_says_it_waits(server: JupyterServer, stand_in: StandIn, notebook: tuple[str, object], script_kernel: tuple[str, object]) -> None:
    (_, first), (_, second) = notebook, script_kernel
    stand_in.fail(status=429, retry_after=3)
    asked = first.submit("%claude --no-history the first kernel asks")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not (stand_in.message_requests and stand_in.message_requests[0].ended) and time.monotonic() < deadline:
        time.sleep(0.01)
    limited = stand_in.message_requests[0]
    assert limited.status == 429
    waiting = second.run("%%claude --no-history\nthe second kernel asks")  # type: ignore[attr-defined]
    answered = first.collect(asked)  # type: ignore[attr-defined]
    assert waiting.status == "ok" and answered.status == "ok", (waiting.error, answered.error)
    later = stand_in.message_requests[1:]
    assert len(later) == 2
    assert all(r.received - limited.received >= 2.9 for r in later), [r.received - limited.received for r in later]
    shown = [m["content"]["data"].get("text/plain", "") for m in waiting.messages if m["header"]["msg_type"] in ("display_data", "update_display_data")]
    assert "waiting for the rate limit (1 s)" in shown
    assert "the second kernel asks" in waiting.markdown()[0]


def test_a_stream_answered_while_it_waited_is_retried_by_the_proxy_as_the_client_would(stand_in: StandIn, notebook: tuple[str, object], script_kernel: tuple[str, object]) -> None:
    """Once the kernel has been told to wait, its stream has begun: an overloaded upstream can't be
    answered with a status its client would retry, so the proxy retries it itself."""
    (_, first), (_, second) = notebook, script_kernel
    stand_in.fail(status=429, retry_after=3)
    stand_in.fail(status=529, times=2)
    asked = first.submit("%claude --no-history the first kernel asks")  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while not (stand_in.message_requests and stand_in.message_requests[0].ended) and time.monotonic() < deadline:
        time.sleep(0.01)
    waited = second.run("%%claude --no-history\nthe second kernel waits, then meets an overloaded API")  # type: ignore[attr-defined]
    assert first.collect(asked).status == "ok"  # type: ignore[attr-defined]
    assert waited.status == "ok", waited.error
    assert "the second kernel waits" in waited.markdown()[0]
    shown = [m["content"]["data"].get("text/plain", "") for m in waited.messages if m["header"]["msg_type"] in ("display_data", "update_display_data")]
    assert "waiting for the rate limit (1 s)" in shown
    assert [r.status for r in stand_in.message_requests] == [429, 529, 529, 200, 200]


def test_a_spend_cap_is_never_retried_and_says_what_it_is(stand_in: StandIn, notebook: tuple[str, object]) -> None:
    _, kernel = notebook
    stand_in.fail(status=429, error_code="enforced_spend_limit_reached", message="You have reached your specified API usage limits.", times=3)
    result = kernel.run("%claude --no-history over the cap")  # type: ignore[attr-defined]
    assert result.error is not None, result.outputs
    line = result.error["traceback"][0]
    assert "the organisation's monthly spend limit is reached (429 enforced_spend_limit_reached" in line
    assert "not retried" in line
    assert len(stand_in.message_requests) == 1
    started = time.monotonic()
    stand_in.reset()
    assert kernel.run("%claude --no-history and the next question goes at once").status == "ok"  # type: ignore[attr-defined]
    assert time.monotonic() - started < 1.5


def test_stop_mid_answer_closes_the_upstream_within_a_second(server: JupyterServer, stand_in: StandIn, script_kernel: tuple[str, object]) -> None:
    kernel_id, kernel = script_kernel
    stand_in.reset()
    asked = kernel.submit("%%claude --no-history\nA long slow story [[delay=0.1]] [[words=300]]")  # type: ignore[attr-defined]
    shown = kernel.collect(asked, until=lambda result: any(result.markdown()), timeout=30)  # type: ignore[attr-defined]
    (request,) = stand_in.message_requests  # this cell's, streaming: its answer has begun to show
    time.sleep(0.3)
    server.api("POST", f"/api/kernels/{kernel_id}/interrupt")
    interrupted = time.monotonic()
    result = kernel.collect(asked, shown)  # type: ignore[attr-defined]
    stopped_reading = time.monotonic()  # the cell has ended: its kernel reads the stream no more
    while request.ended is None and time.monotonic() - stopped_reading < 5:
        time.sleep(0.01)
    assert request.ended is not None, f"the upstream stream was still open 5 s after the kernel stopped reading ({stopped_reading - interrupted:.2f} s after the interrupt)"
    print(f"\nthe kernel stopped {stopped_reading - interrupted:.3f} s after the interrupt; the upstream request closed {request.ended - interrupted:.3f} s after it")
    assert request.ended - stopped_reading < 1.0, "the upstream stream was still open a second after the kernel stopped reading"
    assert "interrupted; the partial answer above is kept" in result.error["traceback"][0]
    assert 0 < len(result.markdown()[0]) < len(request.answer or "")


# --- kernels, restarts, notebooks that move ------------------------------------------------------


def test_a_restarted_kernel_keeps_its_way_to_the_proxy_and_the_magic(server: JupyterServer, stand_in: StandIn, script_kernel: tuple[str, object]) -> None:
    kernel_id, kernel = script_kernel
    token = token_of(kernel)
    server.api("POST", f"/api/kernels/{kernel_id}/restart")
    restarted = server.connect(kernel_id)
    assert token_of(restarted) == token
    assert restarted.run("import os; print('ANTHROPIC_API_KEY' in os.environ)").stdout.strip() == "False"
    assert restarted.run("%claude --no-history after the restart").status == "ok"
    assert stand_in.message_requests[-1].headers["x-api-key"] == KEY


def test_the_magic_is_loaded_in_python_kernels_only_and_load_ext_stays_quiet(server: JupyterServer, notebook: tuple[str, object]) -> None:
    _, kernel = notebook
    loaded = kernel.run("%load_ext claude_magic\nprint(get_ipython().find_line_magic('claude') is not None)")  # type: ignore[attr-defined]
    assert loaded.stdout == "True\n" and loaded.stderr == ""
    spec = server.state / "data" / "kernels" / "not-python"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Not Python", "language": "R"}))
    _, other = server.start_kernel("not-python")
    assert other.run("print(get_ipython().find_line_magic('claude'))").stdout.strip() == "None"


def test_a_renamed_notebook_keeps_its_conversation(server: JupyterServer, stand_in: StandIn) -> None:
    server.write_notebook("draft.ipynb")
    _, kernel = server.open_notebook("draft.ipynb")
    assert kernel.run("%claude What goes well with MARMALADE?").status == "ok"
    server.api("PATCH", "/api/contents/draft.ipynb", {"path": "final.ipynb"})
    moved = ConversationStore(str(server.root / "final.ipynb"), server.home)
    deadline = time.monotonic() + 10
    while not moved.path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert moved.path.exists(), "the conversation did not follow the notebook"
    assert kernel.run("%claude And with toast?").status == "ok"  # the kernel still running under the old name
    assert "MARMALADE" in " ".join(stand_in.message_requests[-1].prompts()[:-1])
    _, reopened = server.open_notebook("final.ipynb")
    history = reopened.run("%claude history").displays()[0]["data"]["text/plain"]
    assert "2 turns" in history and "final.ipynb" in history
    assert reopened.run("%claude One more?").status == "ok"
    assert stand_in.message_requests[-1].prompts() == ["What goes well with MARMALADE?", "And with toast?", "One more?"]


def test_a_deleted_notebooks_conversation_is_archived(server: JupyterServer) -> None:
    server.write_notebook("scratch.ipynb")
    _, kernel = server.open_notebook("scratch.ipynb")
    assert kernel.run("%claude Something to keep").status == "ok"
    store = ConversationStore(str(server.root / "scratch.ipynb"), server.home)
    assert store.path.exists()
    server.api("DELETE", "/api/contents/scratch.ipynb")
    deadline = time.monotonic() + 10
    while store.path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.path.exists() and len(store.archived()) == 1
    assert "Something to keep" in store.archived()[0].read_text()


# --- usage ----------------------------------------------------------------------------------------


def test_usage_all_shows_the_servers_figures_which_its_json_endpoint_gives_to_its_users_and_kernels(server: JupyterServer, notebook: tuple[str, object]) -> None:
    _, kernel = notebook
    assert kernel.run("%claude --no-history count me").status == "ok"  # type: ignore[attr-defined]
    shown = kernel.run("%claude usage --all").displays()[0]["data"]  # type: ignore[attr-defined]
    plain = shown["text/plain"]
    assert "today" in plain and "this month" in plain and "analysis.ipynb" in plain and "claude-sonnet-5-5" in plain
    summary = server.api("GET", "/claude-magic/usage")
    assert summary["today"]["requests"] >= 1 and summary["by_model"][0]["model"]
    assert proxy_call(server, "GET", "/usage", token_of(kernel)).json() == server.api("GET", "/claude-magic/usage")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib_get(f"{server.proxy}/usage")
    assert refused.value.code == 403


def urllib_get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


def test_usage_all_without_the_server_says_there_is_none(tmp_path: Path) -> None:
    from kernel_harness import Kernel

    with Kernel({"ANTHROPIC_API_KEY": "sk-ant-own-0000000000", "CLAUDE_MAGIC_PROXY": None, "CLAUDE_MAGIC_HOME": str(tmp_path)}) as kernel:
        assert kernel.run("%load_ext claude_magic").status == "ok"
        result = kernel.run("%claude usage --all")
        assert "a Jupyter server with claude-magic's extension" in result.error["traceback"][0]
