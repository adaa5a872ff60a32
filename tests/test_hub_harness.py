"""The JupyterHub harness itself (``hub_harness.py``), with a stand-in for claude-magic's service.

One real Hub for the module: its proxy, DummyAuthenticator, alice (staff) and bob (students), their
servers started through the Hub's REST API and a kernel in each. The service is
``hub_service_stand_in.py``, which authenticates every request with JupyterHub's ``HubAuth`` as the
real one will: so these tests check what the harness promises the Hub tests (both users' kernels
run code, groups, the roles and scopes that let a user and a user's server reach the service, and
no key anywhere but in the service), without depending on the service's code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_harness import SERVICE_ACCESS, USERS, Hub, HubError, jupyterhub, missing, process_environment, processes_marked
from kernel_harness import Kernel

KEY = "sk-ant-hub-harness-key"
MISSING = missing()

pytestmark = [pytest.mark.hub, pytest.mark.skipif(MISSING is not None, reason=f"HUB TESTS SKIPPED: {MISSING}")]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    stand_in = Path(__file__).with_name("hub_service_stand_in.py")
    with jupyterhub(tmp_path_factory.mktemp("hub"), key=KEY, service_command=[sys.executable, str(stand_in)]) as hub:
        hub.start_servers(*USERS)
        yield hub
    assert processes_marked(hub.marker) == [], "processes of the Hub outlived it"


@pytest.fixture(scope="module")
def kernels(hub: Hub) -> dict[str, tuple[str, Kernel]]:
    return {user: hub.start_kernel(user) for user in USERS}


def test_each_users_kernel_runs_code_in_that_users_server(hub: Hub, kernels: dict[str, tuple[str, Kernel]]) -> None:
    for user, (_, kernel) in kernels.items():
        result = kernel.run("import getpass, os; print(os.environ['JUPYTERHUB_USER'], os.environ['HOME'])")
        assert result.status == "ok", result.error
        assert result.stdout.split() == [user, str(hub.home(user))]


def test_a_notebooks_kernel_is_started_as_jupyterlab_starts_it(hub: Hub) -> None:
    kernel_id, kernel = hub.open_notebook("bob", "analysis.ipynb")
    assert kernel.run("import os; print(os.environ.get('JPY_SESSION_NAME'))").stdout.strip().endswith("analysis.ipynb")
    assert process_environment(hub.kernel_pid("bob", kernel_id))["JUPYTERHUB_USER"] == "bob"


def test_the_users_are_in_their_groups(hub: Hub) -> None:
    assert hub.user("alice")["groups"] == ["staff"]
    assert hub.user("bob")["groups"] == ["students"]


def test_only_the_service_holds_the_key(hub: Hub, kernels: dict[str, tuple[str, Kernel]]) -> None:
    for user, (kernel_id, _) in kernels.items():
        for pid in (hub.server_pid(user), hub.kernel_pid(user, kernel_id)):
            environment = process_environment(pid)
            assert environment["JUPYTERHUB_USER"] == user
            assert environment["CLAUDE_MAGIC_HUB_SERVICE_URL"] == hub.service_url
            assert "ANTHROPIC_API_KEY" not in environment
            assert KEY not in "".join(f"{name}={value}" for name, value in environment.items())
    assert KEY not in "".join(process_environment(hub.process.pid).values())
    token, _ = hub.token_for("alice")
    status, answer = hub.request("GET", f"{hub.service_public_url}/", token=token)
    assert (status, answer["holds_key"]) == (200, True), answer
    assert KEY not in hub.log.read_text() + hub.service_log.read_text()


def test_a_users_token_reaches_the_service_through_the_hubs_proxy(hub: Hub) -> None:
    token, _ = hub.token_for("alice")
    status, answer = hub.request("GET", f"{hub.service_public_url}/v1/models", token=token)
    assert status == 200, answer
    assert (answer["name"], answer["groups"], answer["path"]) == (
        "alice",
        ["staff"],
        "/services/claude-magic/v1/models",
    )
    assert SERVICE_ACCESS in answer["scopes"]


def test_the_service_refuses_no_token_a_revoked_one_and_one_without_its_scope(hub: Hub) -> None:
    assert hub.request("GET", f"{hub.service_public_url}/", token=None)[0] == 403
    narrow, _ = hub.token_for("bob", scopes=["read:users:name!user=bob"])
    assert hub.request("GET", f"{hub.service_public_url}/", token=narrow)[0] == 403
    revoked, token_id = hub.token_for("bob")
    assert hub.request("GET", f"{hub.service_public_url}/", token=revoked)[0] == 200
    hub.revoke("bob", token_id)
    assert hub.request("GET", f"{hub.service_public_url}/", token=revoked)[0] == 403


def test_a_users_server_token_may_access_the_service(hub: Hub) -> None:
    server_token = process_environment(hub.server_pid("alice"))["JUPYTERHUB_API_TOKEN"]
    status, model = hub.request("GET", f"{hub.public_url}/hub/api/user", token=server_token)
    assert status == 200, model
    assert SERVICE_ACCESS in model["scopes"]
    assert hub.request("GET", f"{hub.service_public_url}/", token=server_token)[1]["name"] == "alice"


def test_a_service_that_fails_to_start_is_reported_with_its_output_and_leaves_nothing_running(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "raise SystemExit('the service found no config')"]
    with (
        pytest.raises(HubError, match="the service found no config"),
        jupyterhub(tmp_path, key=KEY, service_command=failing),
    ):
        pass
    assert processes_marked(str(tmp_path)) == []
