"""The server half's parts on their own: kernel tokens, what a kernel's launch gets, the proxy's
routes and headers, the usage read from a passing stream, a request's worst case. (The whole, in a
real Jupyter server, is tested in ``test_server_extension.py``.)"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from claude_magic.core.budget import local_tokens
from claude_magic.core.pricing import cost
from claude_magic.server.kernels import AUTOLOAD_EXTENSION, KernelLaunch, KernelTokens, runs_ipykernel
from claude_magic.server.proxy import Estimate, StreamUsage, api_route, passed_back, sent_on

KERNEL = "5b3c2f0e-8a61-4f0b-9d8e-3f1c2a7b6e90"
PROXY = "http://127.0.0.1:8888/claude-magic"
PYTHON = SimpleNamespace(language="python", argv=["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"])


def test_a_token_names_its_kernel_and_nothing_else_passes() -> None:
    tokens = KernelTokens()
    token = tokens.token(KERNEL)
    assert tokens.kernel_of(token) == KERNEL
    assert KernelTokens().kernel_of(token) is None  # another server's secret
    forged = [None, "", "sk-ant-api03-key", f"cmk-{KERNEL}", f"cmk-{KERNEL}.", token[:-1] + ("A" if token[-1] != "A" else "B"), token.replace(KERNEL, KERNEL[:-1] + "1")]
    assert [tokens.kernel_of(candidate) for candidate in forged] == [None] * len(forged)


def test_a_kernel_gets_the_proxy_and_its_token_never_a_key() -> None:
    launch = KernelLaunch(KernelTokens(), lambda: PROXY)
    given = {"env": {"PATH": "/bin", "JPY_SESSION_NAME": "/nb.ipynb", "ANTHROPIC_API_KEY": "sk-ant-leaked", "ANTHROPIC_AUTH_TOKEN": "other"}, "cwd": "/"}
    arranged = launch.arranged(KERNEL, PYTHON, given)
    env = arranged["env"]
    assert "ANTHROPIC_API_KEY" not in env and env["ANTHROPIC_AUTH_TOKEN"] == launch.tokens.token(KERNEL)
    assert env["ANTHROPIC_BASE_URL"] == env["CLAUDE_MAGIC_PROXY"] == PROXY
    assert env["JPY_SESSION_NAME"] == "/nb.ipynb" and arranged["cwd"] == "/"
    assert arranged["extra_arguments"] == [f"--ext={AUTOLOAD_EXTENSION}"]
    assert given["env"]["ANTHROPIC_API_KEY"] == "sk-ant-leaked", "the caller's launch arguments are left as they were"


def test_without_a_key_held_a_kernel_starts_as_it_would_and_the_magic_loads_only_where_asked() -> None:
    no_key = KernelLaunch(KernelTokens(), lambda: None).arranged(KERNEL, PYTHON, {"env": {"PATH": "/bin"}, "extra_arguments": ["--debug"]})
    assert no_key["env"] == {"PATH": "/bin"} and no_key["extra_arguments"] == ["--debug", f"--ext={AUTOLOAD_EXTENSION}"]
    off = KernelLaunch(KernelTokens(), lambda: PROXY, load_magic=False).arranged(KERNEL, PYTHON, {"env": {}})
    assert "extra_arguments" not in off
    for spec in (SimpleNamespace(language="R", argv=["R", "--slave", "-e", "IRkernel::main()"]), SimpleNamespace(language="python", argv=["xpython", "-f", "{connection_file}"])):
        assert not runs_ipykernel(spec)
        assert "extra_arguments" not in KernelLaunch(KernelTokens(), lambda: PROXY).arranged(KERNEL, spec, {"env": {}})


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/v1/messages", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("GET", "/v1/models", "/v1/models"),
        ("GET", "/v1/models/claude-sonnet-5-5", "/v1/models/{model_id}"),
        ("GET", "/v1/models/claude-haiku-4-5@20251001", "/v1/models/{model_id}"),
        ("GET", "/v1/messages", None),
        ("POST", "/v1/messages/batches", None),
        ("GET", "/v1/models/..", None),
        ("GET", "/v1/models/a/b", None),
        ("GET", "/v1/models/%2e%2e", None),
        ("GET", "/v1/models/", None),
        ("POST", "/v1/complete", None),
        ("POST", "//evil.example/v1/messages", None),
        ("POST", "/v1/messages/", None),
    ],
)
def test_only_the_api_routes_the_package_uses_are_forwarded(method: str, path: str, route: str | None) -> None:
    assert api_route(method, path) == route


def test_headers_sent_on_and_passed_back() -> None:
    assert [name for name in ("anthropic-version", "anthropic-beta", "content-type", "x-stainless-retry-count", "user-agent") if not sent_on(name)] == []
    assert [name for name in ("authorization", "x-api-key", "cookie", "host", "x-forwarded-for", "x-xsrftoken") if sent_on(name)] == []
    kept = ("request-id", "retry-after", "retry-after-ms", "x-should-retry", "anthropic-ratelimit-requests-remaining", "content-type")
    assert all(passed_back(name) for name in kept)
    assert not any(passed_back(name) for name in ("set-cookie", "content-length", "transfer-encoding", "connection", "server"))


def sse(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def test_the_usage_of_a_stream_is_read_as_it_passes_in_any_pieces() -> None:
    stream = b"".join(
        [
            sse("message_start", {"type": "message_start", "message": {"model": "claude-haiku-5-5", "usage": {"input_tokens": 12, "cache_read_input_tokens": 300, "output_tokens": 1}}}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hé"}}),
            b"event: message_delta\ndata: {not json\n\n",
            sse("message_delta", {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 7, "input_tokens": None}}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 42}}),
        ]
    )
    for wire in (stream, stream.replace(b"\n", b"\r\n")):  # the API's line endings, and CRLF
        for size in (1, 7, len(wire)):
            reader = StreamUsage()
            for start in range(0, len(wire), size):
                reader.feed(wire[start : start + size])
            assert reader.model == "claude-haiku-5-5"
            assert reader.usage == {"input_tokens": 12, "cache_read_input_tokens": 300, "output_tokens": 42}


def test_a_requests_worst_case_is_the_context_budgets_estimate_and_all_its_max_tokens() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "How big is this question? " * 40}]}]
    estimate = Estimate.of({"model": "claude-sonnet-5-5", "max_tokens": 2048, "system": "Be brief.", "messages": messages})
    assert estimate.input_tokens == local_tokens(messages, "Be brief.") > 200
    assert estimate.output_tokens == 2048
    assert estimate.usd == cost("claude-sonnet-5-5", {"input_tokens": estimate.input_tokens, "output_tokens": 2048})
    assert Estimate.of({"model": "no-such-model", "max_tokens": "many", "messages": "not a list"}) == Estimate("no-such-model", 0, 0, 0.0)


def test_the_key_comes_from_config_a_key_file_or_the_environment_which_loses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from claude_magic.server.extension import ClaudeServer

    def taken(**settings: str) -> tuple[str | None, str | None]:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment")
        monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "a-bearer-token")
        credentials = ClaudeServer(**settings).take_key(logging.getLogger("test"))
        assert "ANTHROPIC_API_KEY" not in os.environ and "ANTHROPIC_AUTH_TOKEN" not in os.environ
        return credentials.api_key, credentials.auth_token

    key_file = tmp_path / "key"
    key_file.write_text("sk-ant-from-a-file\n")
    assert taken() == ("sk-ant-from-the-environment", "a-bearer-token")
    assert taken(api_key_file=str(key_file)) == ("sk-ant-from-a-file", None)
    assert taken(api_key="sk-ant-from-config", api_key_file=str(key_file)) == ("sk-ant-from-config", None)
    assert taken(api_key_file=str(tmp_path / "missing")) == (None, None)
    monkeypatch.setenv("CLAUDE_MAGIC_API_KEY_FILE", str(key_file))  # the file's path, as a Hub service is given it
    assert taken() == ("sk-ant-from-a-file", None)
