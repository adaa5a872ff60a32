"""A real JupyterHub with claude-magic's Hub service, in processes of their own, for the tests.

:func:`jupyterhub` writes a ``jupyterhub_config.py`` in a temporary folder and starts ``jupyterhub``
on 127.0.0.1 (free ports for the public proxy, the proxy's API and the Hub), its proxy
``configurable-http-proxy`` (from npm: ``make test`` installs it in ``.venv/node``) started by the
Hub, DEBUG logging to a file (the Hub's own output and that of its proxy and the users' servers;
the service's output goes to a file of its own). In it:

- ``DummyAuthenticator`` (anyone, any password), users ``alice`` and ``bob``, groups ``staff`` =
  [alice] and ``students`` = [bob] (or the caller's);
- ``SimpleLocalProcessSpawner``: each user's server (``jupyterhub-singleuser`` with claude-magic's
  server extension, as installed) runs as this OS user with a home of its own under the temporary
  folder, and ``CLAUDE_MAGIC_HUB_SERVICE_URL`` in its environment;
- the managed service ``claude-magic`` (by default ``python -m claude_magic.hub -f <config>``), the
  only process given the key: a private file whose path is ``CLAUDE_MAGIC_API_KEY_FILE`` in its
  ``environment`` (JupyterHub stores a service's environment in its database, so the key itself is
  not put there); the Hub's own environment has no key, so nothing it starts can inherit one;
- roles: users, and their servers' own tokens (``JUPYTERHUB_API_TOKEN``), may access the service
  (``access:services!service=claude-magic``); the service may read users' names and groups and the
  groups (their properties: budgets, policy); the service ``tester``, with a known token and the
  ``admin`` role, is the harness's own client of the Hub's REST API.

JupyterHub 6 gives a single-user server (and a managed service) only its ``environment``, the
variables that connect it to the Hub and those its ``env_keep`` lists (by default only
``JUPYTERHUB_SINGLEUSER_APP``: not even ``PATH``): so the harness names the servers' command by its
path and passes ``PATH`` and ``PYTHONPATH`` on itself (the tests' copy of claude-magic).

Every process started for one Hub carries a marker in its environment; at exit, after the servers
are stopped through the API and the Hub is terminated (which stops its proxy and service), any
process still carrying it is killed, so nothing outlives the Hub.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kernel_harness import Kernel
from server_harness import UNUSED, free_port

SERVICE = "claude-magic"
SERVICE_ACCESS = f"access:services!service={SERVICE}"
USERS = ("alice", "bob")
GROUPS: dict[str, Any] = {"staff": {"users": ["alice"]}, "students": {"users": ["bob"]}}
MARKER = "CLAUDE_MAGIC_HUB_HARNESS"
"""The environment variable every process of one harness's Hub carries (its folder)."""

SERVER_ROLE_SCOPES = ["users:activity!user", "access:servers!server"]
"""The ``server`` role's scopes in JupyterHub 6.1.1 (``jupyterhub/roles.py``, ``get_default_roles``):
what a server's own token holds by default, kept when the service's access is added to it."""

START_TIMEOUT = 60.0


def proxy_command() -> str | None:
    """configurable-http-proxy where ``make test`` installs it (``$(VENV)/node``), else on ``PATH``."""
    installed = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(installed) if installed.exists() else shutil.which("configurable-http-proxy")


def missing() -> str | None:
    """Why the Hub tests can't run here (None: they can)."""
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (make test installs it: pip install -e '.[dev]')"
    if proxy_command() is None:
        return "configurable-http-proxy not found (make test installs it: npm install --prefix .venv/node configurable-http-proxy)"
    return None


def process_environment(pid: int) -> dict[str, str]:
    """A process's environment as it started (``/proc/<pid>/environ``)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in entries if entry)


def _command_line(pid: int) -> list[str]:
    return [part.decode(errors="replace") for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]


def processes_marked(marker: str) -> list[int]:
    """The live processes whose environment carries ``MARKER=marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if process_environment(int(entry.name)).get(MARKER) == marker:
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


class HubError(RuntimeError):
    """The Hub, its service or a user's server did not come up (the message holds the log's tail)."""


@dataclass
class Hub:
    base: Path
    public_url: str
    service_url: str
    """The service's direct URL with its prefix (``http://127.0.0.1:<port>/services/claude-magic``),
    what ``CLAUDE_MAGIC_HUB_SERVICE_URL`` holds in the users' servers."""
    tester_token: str
    log: Path
    """The Hub's log, with the output of its proxy and of the users' servers and kernels."""
    service_log: Path
    """The service's output (stdout and stderr)."""
    process: subprocess.Popen[bytes]
    kernels: list[Kernel] = field(default_factory=list)
    _user_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def marker(self) -> str:
        return str(self.base)

    @property
    def service_public_url(self) -> str:
        """The service through the Hub's proxy, as a browser reaches it."""
        return f"{self.public_url}/services/{SERVICE}"

    def home(self, user: str) -> Path:
        return self.base / "home" / user

    def runtime_dir(self, user: str) -> Path:
        """Where the user's server writes its kernels' connection files (Jupyter's default for the
        server's ``HOME``: its data folder's ``runtime``)."""
        return self.home(user) / ".local" / "share" / "jupyter" / "runtime"

    def log_tail(self, size: int = 4000) -> str:
        """The end of the Hub's log and of the service's, for an error's message."""
        return (
            f"{_tail(self.log, size)}\n--- the service's output ({self.service_log}):\n{_tail(self.service_log, size)}"
        )

    # --- HTTP ---

    def request(self, method: str, url: str, *, token: str | None, body: Any = None) -> tuple[int, Any]:
        """One HTTP call; its status and decoded JSON body (the text when it isn't JSON, None when empty).
        HTTP errors are answers too."""
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **({"Authorization": f"token {token}"} if token else {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, data = error.code, error.read()
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode(errors="replace")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call of the Hub's REST API (``/hub/api{path}``) as the admin service ``tester``; the
        decoded answer. Raises on an HTTP error status."""
        status, answer = self.request(method, f"{self.public_url}/hub/api{path}", token=self.tester_token, body=body)
        if status >= 400:
            raise HubError(f"{method} /hub/api{path}: {status} {answer}")
        return answer

    def token_for(self, user: str, scopes: list[str] | None = None, note: str = "test") -> tuple[str, str]:
        """A new API token of ``user`` (all the user's permissions, or only ``scopes``): (token, its id)."""
        body: dict[str, Any] = {"note": note, **({"scopes": scopes} if scopes is not None else {})}
        answer = self.api("POST", f"/users/{quote(user)}/tokens", body)
        return answer["token"], answer["id"]

    def revoke(self, user: str, token_id: str) -> None:
        self.api("DELETE", f"/users/{quote(user)}/tokens/{token_id}")

    def user(self, user: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/users/{quote(user)}"))

    # --- users' servers and kernels ---

    def start_servers(self, *users: str) -> None:
        """Start the users' servers through the Hub (as its home page does), all at once, and wait
        until they are ready."""
        _each(self._start_server, users)

    def start_server(self, user: str) -> None:
        self.start_servers(user)

    def _start_server(self, user: str) -> None:
        self.api("POST", f"/users/{quote(user)}/server")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            server = self.user(user).get("servers", {}).get("")
            if server and server.get("ready"):
                return
            if not server:
                raise HubError(f"{user}'s server stopped while starting:\n{self.log_tail()}")
            self._check_alive()
            time.sleep(0.2)
        raise HubError(f"{user}'s server was not ready within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop_servers(self, *users: str) -> None:
        """Stop the users' servers through the Hub, all at once (their kernels with them)."""
        _each(self._stop_server, users)

    def _stop_server(self, user: str) -> None:
        if self.user(user).get("servers", {}).get(""):
            self.api("DELETE", f"/users/{quote(user)}/server")
        deadline = time.monotonic() + START_TIMEOUT
        while self.user(user).get("servers", {}).get("") and time.monotonic() < deadline:
            time.sleep(0.2)

    def server_url(self, user: str) -> str:
        """The user's server through the Hub's proxy (``/user/<name>``)."""
        return f"{self.public_url}/user/{quote(user)}"

    def server_api(self, user: str, method: str, path: str, body: Any = None) -> Any:
        """A call of ``user``'s server's REST API through the Hub's proxy, with a token of that user;
        the decoded answer. Raises on an HTTP error status."""
        if user not in self._user_tokens:
            self._user_tokens[user] = self.token_for(user, note="the harness's calls of the user's server")[0]
        status, answer = self.request(
            method, f"{self.server_url(user)}{path}", token=self._user_tokens[user], body=body
        )
        if status >= 400:
            raise HubError(f"{method} {self.server_url(user)}{path}: {status} {answer}")
        return answer

    def start_kernel(self, user: str, name: str = "python3") -> tuple[str, Kernel]:
        """A kernel of ``user``'s server, started as a script starts one (``POST /api/kernels``), and
        reached through its connection file."""
        kernel_id = self.server_api(user, "POST", "/api/kernels", {"name": name})["id"]
        return kernel_id, self.connect(user, kernel_id)

    def open_notebook(self, user: str, path: str) -> tuple[str, Kernel]:
        """The kernel of a notebook of ``user``'s (an empty one written first when ``path`` is new),
        started as JupyterLab starts one: a session, which passes the notebook's path on."""
        notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        if not (self.home(user) / path).exists():
            self.server_api(
                user, "PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": notebook}
            )
        session = {"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook", "kernel": {"name": "python3"}}
        kernel_id = self.server_api(user, "POST", "/api/sessions", session)["kernel"]["id"]
        return kernel_id, self.connect(user, kernel_id)

    def connect(self, user: str, kernel_id: str) -> Kernel:
        """A kernel of ``user``'s server (started by any means), reached through its connection file."""
        kernel = Kernel.attached(str(self.runtime_dir(user) / f"kernel-{kernel_id}.json"))
        self.kernels.append(kernel)
        return kernel

    def server_pid(self, user: str) -> int:
        """The process id of ``user``'s server (``jupyterhub-singleuser``), started by the Hub."""
        return self._one_process(
            lambda env, argv: env.get("JUPYTERHUB_USER") == user and _is_single_user_server(argv), user
        )

    def kernel_pid(self, user: str, kernel_id: str) -> int:
        """The process id of a kernel of ``user``'s server (the one given its connection file)."""
        connection_file = str(self.runtime_dir(user) / f"kernel-{kernel_id}.json")
        return self._one_process(lambda env, argv: connection_file in argv, f"{user}'s kernel {kernel_id}")

    def _one_process(self, matches: Callable[[dict[str, str], list[str]], bool], what: str) -> int:
        found = []
        for pid in processes_marked(self.marker):
            try:
                if matches(process_environment(pid), _command_line(pid)):
                    found.append(pid)
            except OSError:
                continue
        if len(found) != 1:
            raise HubError(f"{len(found)} processes for {what}: {found}")
        return found[0]

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise HubError(f"jupyterhub exited with {self.process.returncode}:\n{self.log_tail()}")


def _each(action: Callable[[str], None], users: tuple[str, ...]) -> None:
    """``action`` for each user at once (the Hub answers a spawn's request only when the server is up,
    or after 10 s); the first error raised again."""
    with ThreadPoolExecutor(max_workers=len(users) or 1) as pool:
        for done in [pool.submit(action, user) for user in users]:
            done.result()


def _is_single_user_server(argv: list[str]) -> bool:
    return any(Path(part).name == "jupyterhub-singleuser" for part in argv[:2])


@contextmanager
def jupyterhub(
    base: Path,
    *,
    key: str,
    service_config: str = "",
    service_command: list[str] | None = None,
    service_environment: dict[str, str] | None = None,
    user_environment: dict[str, str] | None = None,
    server_settings: dict[str, Any] | None = None,
    groups: dict[str, Any] | None = None,
    service_scopes: list[str] | None = None,
) -> Iterator[Hub]:
    """A running JupyterHub in ``base`` (an empty folder), its users' servers not started.

    The service ``claude-magic`` runs ``service_command`` (default: ``python -m claude_magic.hub -f
    <file>``, the file holding ``service_config``) with ``key`` in the file ``CLAUDE_MAGIC_API_KEY_FILE``
    names and ``service_environment`` in its environment, and the scopes ``service_scopes`` (default: read users'
    names and groups, and groups). The users' servers get ``user_environment`` in theirs, and
    ``server_settings`` as their ``c.ClaudeServer``. ``groups`` is ``c.JupyterHub.load_groups``.
    """
    base.mkdir(parents=True, exist_ok=True)
    hub_dir = base / "hub"
    hub_dir.mkdir()
    service_port = free_port()
    public_url = f"http://127.0.0.1:{free_port()}"
    service_url = f"http://127.0.0.1:{service_port}/services/{SERVICE}"
    tester_token = secrets.token_hex(16)
    (base / "service").mkdir()
    if service_command is None:
        config_file = base / "service" / "claude_magic_hub_config.py"
        config_file.write_text(service_config)
        service_command = [sys.executable, "-m", "claude_magic.hub", "-f", str(config_file)]
    service_log = base / "service" / "service.log"
    passed_on = {name: os.environ[name] for name in ("PATH", "PYTHONPATH", "LANG") if name in os.environ}
    marker = {MARKER: str(base)}
    for user in USERS:
        _write_server_config(base / "home" / user, server_settings or {})
    key_file = hub_dir / "anthropic-key"
    key_file.touch(mode=0o600)
    key_file.write_text(key)
    config = _hub_config(
        hub_dir,
        public_url=public_url,
        service={
            "name": SERVICE,
            "url": f"http://127.0.0.1:{service_port}",
            "command": _logging_to(service_log, service_command),
            "environment": {
                **passed_on,
                **marker,
                "CLAUDE_MAGIC_API_KEY_FILE": str(key_file),
                **(service_environment or {}),
            },
            "oauth_no_confirm": True,
        },
        user_environment={
            **passed_on,
            **marker,
            "CLAUDE_MAGIC_HUB_SERVICE_URL": service_url,
            **(user_environment or {}),
        },
        home=base / "home",
        groups=GROUPS if groups is None else groups,
        service_scopes=service_scopes or ["read:users:name", "read:users:groups", "read:groups"],
        tester_token=tester_token,
    )
    (hub_dir / "jupyterhub_config.py").write_text(config)
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("ANTHROPIC_", "CLAUDE_MAGIC_"))
    }
    environment.pop("JPY_SESSION_NAME", None)
    log = hub_dir / "jupyterhub.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(hub_dir / "jupyterhub_config.py")],
            cwd=hub_dir, env={**environment, **marker}, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    hub = Hub(base, public_url, service_url, tester_token, log, service_log, process)
    try:
        _wait_for_hub(hub)
        _wait_for_service(hub)
        yield hub
    finally:
        _shut_down(hub)


def _logging_to(log: Path, command: list[str]) -> list[str]:
    """``command`` with its output appended to ``log`` (a managed service's output otherwise goes to
    the Hub's), run in place of the shell that redirects it."""
    return ["/bin/sh", "-c", 'log="$1"; shift; exec "$@" >>"$log" 2>&1', "sh", str(log), *command]


def _tail(path: Path, size: int) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(none)"


def _write_server_config(home: Path, settings: dict[str, Any]) -> None:
    """The user's own Jupyter config: the extensions the tests don't use off (the server starts in a
    third of the time), ``settings`` for claude-magic's."""
    config = home / ".jupyter"
    config.mkdir(parents=True)
    extensions = {name: False for name in UNUSED}
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": extensions}, "ClaudeServer": settings})
    )


def _hub_config(
    hub_dir: Path,
    *,
    public_url: str,
    service: dict[str, Any],
    user_environment: dict[str, str],
    home: Path,
    groups: dict[str, Any],
    service_scopes: list[str],
    tester_token: str,
) -> str:
    """The Hub's ``jupyterhub_config.py``: every setting a literal, but the key, read from its file
    into the service's environment (so the Hub's environment never holds it)."""
    server_scopes = [*SERVER_ROLE_SCOPES, SERVICE_ACCESS]
    settings: dict[str, Any] = {
        "JupyterHub.bind_url": public_url,
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{free_port()}",
        "JupyterHub.db_url": f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(hub_dir / "jupyterhub_cookie_secret"),
        "JupyterHub.pid_file": str(hub_dir / "jupyterhub.pid"),
        "JupyterHub.log_level": "DEBUG",
        "ConfigurableHTTPProxy.command": [proxy_command()],
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{free_port()}",
        "ConfigurableHTTPProxy.pid_file": str(hub_dir / "proxy.pid"),
        "ConfigurableHTTPProxy.should_start": True,
        "JupyterHub.authenticator_class": "dummy",
        "Authenticator.allow_all": True,
        "Authenticator.allowed_users": set(USERS),
        "JupyterHub.load_groups": groups,
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": f"{home}/{{username}}",
        "Spawner.cmd": [str(Path(sys.executable).parent / "jupyterhub-singleuser")],
        "Spawner.args": ["--allow-root"] if os.geteuid() == 0 else [],
        "Spawner.environment": user_environment,
        "Spawner.server_token_scopes": server_scopes,
        "Spawner.start_timeout": int(START_TIMEOUT),
        "Spawner.http_timeout": int(START_TIMEOUT),
        "JupyterHub.services": [service, {"name": "tester", "api_token": tester_token}],
        "JupyterHub.load_roles": [
            {"name": "user", "scopes": ["self", SERVICE_ACCESS]},
            {"name": "server", "scopes": server_scopes},
            {"name": f"{SERVICE}-service", "scopes": service_scopes, "services": [SERVICE]},
            {"name": "admin", "services": ["tester"]},
        ],
    }
    lines = [
        '"""Written by tests/hub_harness.py."""',
        "c = get_config()  # noqa: F821",
        *(f"c.{name} = {value!r}" for name, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def _wait_for_hub(hub: Hub) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        hub._check_alive()
        try:
            if hub.request("GET", f"{hub.public_url}/hub/api/", token=None)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise HubError(f"jupyterhub did not answer within {START_TIMEOUT:.0f} s:\n{hub.log_tail()}")


def _wait_for_service(hub: Hub) -> None:
    """Until the service answers at its own address and the Hub's proxy routes its prefix to it."""
    deadline = time.monotonic() + START_TIMEOUT
    route = f"/services/{SERVICE}/"
    while time.monotonic() < deadline:
        hub._check_alive()
        if f"Service {SERVICE} exited with status" in _tail(hub.log, 100_000):
            raise HubError(f"the service {SERVICE} exited:\n{hub.log_tail()}")
        try:
            hub.request("GET", f"{hub.service_url}/", token=None)
            if route in hub.api("GET", "/proxy"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise HubError(
        f"the service {SERVICE} did not answer at {hub.service_url} within {START_TIMEOUT:.0f} s:\n{hub.log_tail()}"
    )


def _shut_down(hub: Hub) -> None:
    """Close the kernels' connections, stop the servers through the Hub, terminate the Hub (which stops
    its proxy and service), then kill whatever carries the marker still."""
    for kernel in hub.kernels:
        kernel.client.stop_channels()
    if hub.process.poll() is None:
        try:
            hub.stop_servers(*USERS)
        except (OSError, HubError):
            pass
        hub.process.terminate()
        try:
            hub.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait()
    _kill_marked(hub.marker)


def _kill_marked(marker: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        leftovers = processes_marked(marker)
        for pid in leftovers:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            leftovers = [pid for pid in leftovers if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
            time.sleep(0.05)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
