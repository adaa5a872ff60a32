"""Teams on JupyterHub: a real Hub, its proxy, two users in two groups, their servers and kernels,
and claude-magic's Hub service holding the key, with the stand-in as its upstream.

One Hub for the module (``hub_harness.py``): alice is in ``staff`` (a small daily budget, and the
ledger's admins), bob in ``students`` (Haiku only). The service shares a scaled-down rate limit
(10 requests in 3 s) that the stand-in enforces too, so a request the service let through too
early would draw a 429 there. The tests check what each user sees in their kernel, what reached the
stand-in, and what the service answers to requests made by hand.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hub_harness import SERVICE_ACCESS, Hub, jupyterhub, missing, process_environment
from server_harness import terminal_output

from claude_magic.testing import StandIn

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(missing() is not None, reason=f"JupyterHub can't run here: {missing()}"),
]

KEY = "sk-ant-api03-hub-" + "k3y" * 20
HAIKU, SONNET = "claude-haiku-5-5", "claude-sonnet-5-5"
STAFF_DAILY_USD = 0.03
LIMIT, WINDOW, SLACK = 10, 3.0, 1.0
"""The service's rate limit for the tests: 10 requests in 3 s, which the stand-in enforces too,
forgiving a second of it: the service counts a request when it lets it go, the stand-in when it
arrives, and on a loaded machine one request's way there can take a second longer than another's."""


def service_config(upstream: str) -> str:
    return "\n".join(
        [
            f"c.ClaudeProxy.upstream_url = {upstream!r}",
            f"c.ClaudeProxy.requests_per_minute = {LIMIT}",
            f"c.ClaudeProxy.rate_window = {WINDOW}",
            "c.ClaudeProxy.user_policy = {'daily_usd': 5.0}",
            f"c.ClaudeProxy.group_policies = {{'staff': {{'daily_usd': {STAFF_DAILY_USD}}}, 'students': {{'models': [{HAIKU!r}]}}}}",
            "c.ClaudeProxy.admin_groups = ['staff']",
            "c.ClaudeProxy.token_cache_seconds = 1",
        ]
    )


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with StandIn(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, stand_in: StandIn) -> Iterator[Hub]:
    with jupyterhub(
        tmp_path_factory.mktemp("hub"), key=KEY, service_config=service_config(stand_in.base_url)
    ) as running:
        started = time.monotonic()
        running.start_servers("alice", "bob")
        print(f"\nthe users' servers started in {time.monotonic() - started:.1f} s")
        yield running


@pytest.fixture(scope="module")
def kernels(hub: Hub) -> dict[str, tuple[str, Any]]:
    """A kernel in each user's server, started through its REST API."""
    return {user: hub.start_kernel(user) for user in ("alice", "bob")}


def ask(kernel: Any, question: str, model: str = HAIKU, *options: str) -> Any:
    return kernel.run(f"%%claude --no-history --model {model} {' '.join(options)}\n{question}", timeout=60)


def kernel_environment(hub: Hub, user: str, kernels: dict[str, tuple[str, Any]]) -> dict[str, str]:
    return process_environment(hub.kernel_pid(user, kernels[user][0]))


# --- answers, and the key nowhere but in the service --------------------------------------------------


def test_both_users_get_answers_and_only_the_service_holds_the_key(
    hub: Hub, stand_in: StandIn, kernels: dict[str, tuple[str, Any]]
) -> None:
    stand_in.reset()
    for user, (_, kernel) in kernels.items():
        result = ask(kernel, f"Hello from {user}")
        assert result.error is None, result.outputs
        assert result.markdown() and result.markdown()[-1].strip(), result.outputs
    assert len(stand_in.message_requests) == 2
    assert all(request.headers.get("x-api-key") == KEY for request in stand_in.message_requests)
    for user in ("alice", "bob"):
        server, kernel = process_environment(hub.server_pid(user)), kernel_environment(hub, user, kernels)
        for name, environment in (("server", server), ("kernel", kernel)):
            assert KEY not in json.dumps(environment), f"{user}'s {name} holds the key"
            assert "ANTHROPIC_API_KEY" not in environment
        assert kernel["ANTHROPIC_BASE_URL"].endswith(f"/user/{user}/claude-magic"), kernel["ANTHROPIC_BASE_URL"]
        assert "JUPYTERHUB_API_TOKEN" not in kernel and "JPY_API_TOKEN" not in kernel, (
            "a kernel could call the service past its server"
        )
        assert server["JUPYTERHUB_API_TOKEN"]
    shown = asyncio.run(
        user_terminal_output(hub, "alice", """printf 'key:%s:\\n' "${ANTHROPIC_API_KEY:-none}" """, "key:none:")
    )
    assert KEY not in shown and "key:none:" in shown, shown
    assert KEY not in (hub.log.read_text() + hub.service_log.read_text())
    hub_database = hub.base / "hub" / "jupyterhub.sqlite"
    assert hub_database.exists() and KEY.encode() not in hub_database.read_bytes(), (
        "the Hub stored the key (a service's environment?)"
    )


def test_config_in_a_kernel_says_the_hub_holds_the_key(kernels: dict[str, tuple[str, Any]]) -> None:
    shown = kernels["bob"][1].run("%claude config").everything()
    assert KEY not in shown
    assert "Jupyter server" in shown


async def user_terminal_output(hub: Hub, user: str, command: str, expected: str) -> str:
    """What a terminal of ``user``'s server shows after ``command`` (until ``expected`` shows, 20 s at most)."""
    from tornado.httpclient import HTTPRequest

    name = hub.server_api(user, "POST", "/api/terminals")["name"]
    token = hub.token_for(user, note="a terminal's websocket")[0]
    socket_url = hub.server_url(user).replace("http://", "ws://") + f"/terminals/websocket/{name}"
    try:
        return await terminal_output(HTTPRequest(socket_url, headers={"Authorization": f"token {token}"}), command, expected)
    finally:
        hub.server_api(user, "DELETE", f"/api/terminals/{name}")


# --- who may use the service -------------------------------------------------------------------------


def messages_url(hub: Hub) -> str:
    return f"{hub.service_url}/v1/messages"


def post_message(
    url: str, headers: dict[str, str], model: str = HAIKU, text: str = "hi", max_tokens: int = 50
) -> httpx.Response:
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}
    return httpx.post(url, json=body, headers={"anthropic-version": "2026-10-21", **headers}, timeout=60)


def test_no_token_a_revoked_one_or_one_without_the_scope_is_refused(hub: Hub, stand_in: StandIn) -> None:
    stand_in.reset()
    url = messages_url(hub)
    refused = post_message(url, {})
    assert refused.status_code == 401 and "takes a Hub token" in refused.json()["error"]["message"]
    token, token_id = hub.token_for("bob")
    assert post_message(url, {"Authorization": f"token {token}"}).status_code == 200  # bob's own token works...
    hub.revoke("bob", token_id)
    time.sleep(1.2)  # the service trusts the Hub's answer about a token for a second (token_cache_seconds)
    refused = post_message(url, {"Authorization": f"token {token}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]  # ...until revoked
    narrow, _ = hub.token_for("alice", scopes=["read:users:name!user=alice"])
    refused = post_message(url, {"Authorization": f"Bearer {narrow}"})
    assert refused.status_code == 403, refused.text
    assert f"lacks the scope {SERVICE_ACCESS}" in refused.json()["error"]["message"]
    assert post_message(url, {"Authorization": f"token {hub.tester_token}"}).status_code == 403  # a service's token
    assert (
        post_message(f"{hub.service_url}/v1/files", {"Authorization": f"token {hub.token_for('alice')[0]}"}).status_code
        == 404
    )
    assert len(stand_in.message_requests) == 1


def test_a_group_limited_to_one_model_is_refused_another_before_anything_is_sent(
    stand_in: StandIn, kernels: dict[str, tuple[str, Any]]
) -> None:
    stand_in.reset()
    result = ask(kernels["bob"][1], "Write me a sonnet", SONNET)
    assert result.error is not None, result.outputs
    line = result.error["traceback"][0]
    assert f"{SONNET} is not allowed by group students (bob): it allows {HAIKU}; nothing was sent" in line, line
    assert "Traceback" not in json.dumps(result.error["traceback"])
    assert stand_in.message_requests == []
    assert ask(kernels["alice"][1], "Write me a sonnet", SONNET, "--max-tokens", "200").error is None  # staff may


# --- one limiter for the whole Hub, fair between users ------------------------------------------------


def test_two_users_sending_20_requests_each_share_the_limit_equally_and_draw_no_429(
    hub: Hub, stand_in: StandIn, kernels: dict[str, tuple[str, Any]]
) -> None:
    """Each through their own kernel's way: its token, its server's proxy, the Hub service."""
    stand_in.reset()
    stand_in.limit_requests(LIMIT, WINDOW, slack=SLACK)
    ways = {user: kernel_environment(hub, user, kernels) for user in ("alice", "bob")}
    warm_up = [
        post_message(messages_url(hub), {"Authorization": f"token {hub.token_for('alice')[0]}"}) for _ in range(LIMIT)
    ]
    assert all(response.status_code == 200 for response in warm_up)  # the window is full: everyone queues from here
    answered: list[tuple[str, int]] = []
    lock = threading.Lock()

    def send(user: str, n: int) -> None:
        environment = ways[user]
        url = environment["ANTHROPIC_BASE_URL"] + "/v1/messages"
        response = post_message(
            url, {"Authorization": f"Bearer {environment['ANTHROPIC_AUTH_TOKEN']}"}, text=f"{user} #{n}"
        )
        with lock:
            answered.append((user, response.status_code))

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(user, n)) for n in range(20) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    assert [status for _, status in answered] == [200] * 40
    contest = [request for request in stand_in.message_requests[LIMIT:]]
    order = [
        request.body["messages"][0]["content"].split(" #")[0] for request in sorted(contest, key=lambda r: r.received)
    ]
    first_half = Counter(order[:20])
    print(
        f"\nfirst half of 40: {dict(first_half)}; 40 requests in {took:.1f} s at {LIMIT} a {WINDOW:g} s; the stand-in's 429s: {stand_in.rate_limited}"
    )
    assert all(8 <= first_half[user] <= 12 for user in ("alice", "bob")), first_half
    assert stand_in.rate_limited == 0
    assert all(request.headers.get("x-api-key") == KEY for request in contest)


# --- budgets, and the ledger ----------------------------------------------------------------------------


def test_a_user_who_spent_their_budget_is_refused_with_one_line_and_the_other_goes_on(
    hub: Hub, stand_in: StandIn, kernels: dict[str, tuple[str, Any]]
) -> None:
    stand_in.reset()
    alice, bob = kernels["alice"][1], kernels["bob"][1]
    before = ledger_by_user(hub, "alice")
    long_answer = ask(alice, "A long story [[words=1500]]", SONNET, "--max-tokens", "2500")
    assert long_answer.error is None, long_answer.outputs
    sent = len(stand_in.message_requests)
    refused = ask(alice, "Another long story [[words=1500]]", SONNET, "--max-tokens", "2500")
    assert refused.error is not None, refused.outputs
    line = refused.error["traceback"][0]
    assert (
        f"alice (group staff)'s daily budget of ${STAFF_DAILY_USD:.2f} has $" in line and "so it was not sent" in line
    ), line
    assert len(stand_in.message_requests) == sent, "a refused request reached the upstream"
    assert ask(bob, "And me?").error is None
    after = ledger_by_user(hub, "alice")
    assert (
        after["alice"]["today"]["requests"] - before["alice"]["today"]["requests"] == 1
    )  # the answer; not the refusal
    assert after["bob"]["today"]["requests"] - before["bob"]["today"]["requests"] == 1
    spent = after["alice"]["today"]["cost_usd"]
    assert f"has ${STAFF_DAILY_USD - spent:.2f} left" in line, (line, spent)  # what the ledger holds
    mine = ledger_json(hub, "bob")
    assert mine["user"] == "bob" and "by_user" not in mine and mine["policy"]["models"] == [HAIKU]
    assert mine["spent"]["today_usd"] == pytest.approx(after["bob"]["today"]["cost_usd"], abs=1e-6)
    days = ledger_json(hub, "alice")["by_day"]
    assert len(days) == 30 and days[-1]["by_user"]["alice"] == pytest.approx(
        after["alice"]["today"]["cost_usd"], abs=1e-6
    )
    spent = after["alice"]["today"]["cost_usd"]
    print(
        f"\nalice spent ${spent:.4f} of ${STAFF_DAILY_USD} and was refused; bob spent ${after['bob']['today']['cost_usd']:.4f} and went on"
    )


def ledger_json(hub: Hub, user: str) -> dict[str, Any]:
    response = httpx.get(f"{hub.service_url}/usage", headers={"Authorization": f"token {hub.token_for(user)[0]}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def ledger_by_user(hub: Hub, admin: str) -> dict[str, Any]:
    zero = {"today": {"requests": 0, "cost_usd": 0.0}}
    rows = {row["user"]: row for row in ledger_json(hub, admin)["by_user"]}
    return {user: rows.get(user, zero) for user in ("alice", "bob")}


def test_admins_read_the_ledger_as_a_page_with_a_chart_and_users_their_own(hub: Hub) -> None:
    for user in ("alice", "bob"):  # a row each, whatever ran before
        assert post_message(messages_url(hub), {"Authorization": f"token {hub.token_for(user)[0]}"}).status_code == 200
    admin = httpx.get(f"{hub.service_url}/", headers={"Authorization": f"token {hub.token_for('alice')[0]}"})
    assert admin.status_code == 200 and admin.headers["content-type"].startswith("text/html")
    assert "<svg" in admin.text and "alice" in admin.text and "bob" in admin.text and "<script" not in admin.text
    own = httpx.get(f"{hub.service_url}/", headers={"Authorization": f"token {hub.token_for('bob')[0]}"})
    assert own.status_code == 200 and "Claude for bob" in own.text and "<svg" not in own.text
    browser = httpx.get(f"{hub.service_public_url}/", follow_redirects=False)
    assert browser.status_code == 302 and "/hub/api/oauth2/authorize" in browser.headers["location"]  # a browser logs in at the Hub
    assert "<svg" in page_after_logging_in(hub, "alice")  # ...and comes back through the Hub's OAuth and the callback
    assert "Claude for bob" in page_after_logging_in(hub, "bob")
    artifacts = Path(__file__).parent / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "hub-ledger.html").write_text(admin.text)  # to look at (tests/artifacts is not kept in git)


def page_after_logging_in(hub: Hub, user: str) -> str:
    """The service's page as a browser gets it: the Hub's login form, then the service, through the
    Hub's OAuth and the service's callback (cookies kept, redirects followed)."""
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        browser.get(f"{hub.public_url}/hub/login")
        xsrf = browser.cookies.get("_xsrf", "")
        logged_in = browser.post(f"{hub.public_url}/hub/login", data={"username": user, "password": "any", "_xsrf": xsrf})
        assert logged_in.status_code == 200, logged_in.text[:500]
        page = browser.get(f"{hub.service_public_url}/")
        assert page.status_code == 200 and str(page.url).rstrip("/").endswith("/services/claude-magic"), (page.status_code, page.url)
        return page.text
