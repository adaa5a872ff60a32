"""A real Jupyter server with claude-magic's extension, in a process of its own, for the tests.

:func:`jupyter_server` starts ``jupyter server`` on a free port of 127.0.0.1 with a token, a
temporary root, runtime, data and config folders, the extension enabled in that config (as the
installed ``jupyter_server_config.d/claude_magic.json`` enables it) with the ``ClaudeServer``
settings a test module gives, the key in its environment and DEBUG logging to a file. Kernels are
started through its REST API, as JupyterLab starts them (a session) or as a script does
(``POST /api/kernels``), and reached through their connection files (:class:`kernel_harness.Kernel`).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel_harness import Kernel

UNUSED = ("jupyterlab", "notebook", "notebook_shim", "jupyter_lsp", "jupyter_server_mathjax", "nbclassic", "voila")
"""Other installed extensions, off: the server starts in a third of the time (JupyterLab with the
extension is tested by ``test_browser.py``)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class JupyterServer:
    url: str
    token: str
    root: Path
    state: Path
    log: Path
    process: subprocess.Popen[bytes]
    kernels: list[Kernel] = field(default_factory=list)

    @property
    def home(self) -> Path:
        """The conversations' home (``CLAUDE_MAGIC_HOME``), where the ledger is kept too."""
        return self.state / "claude-magic"

    @property
    def proxy(self) -> str:
        return f"{self.url}/claude-magic"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A call of the server's REST API with its token; the decoded JSON answer (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
        return json.loads(data) if data else None

    def start_kernel(self, name: str = "python3") -> tuple[str, Kernel]:
        """A kernel started as a script starts one: ``POST /api/kernels``, which passes no environment."""
        kernel_id = self.api("POST", "/api/kernels", {"name": name})["id"]
        return kernel_id, self.connect(kernel_id)

    def open_notebook(self, path: str) -> tuple[str, Kernel]:
        """A notebook's kernel, started as JupyterLab and Notebook 7 start one: a session."""
        name = path.rsplit("/", 1)[-1]
        session = self.api("POST", "/api/sessions", {"path": path, "name": name, "type": "notebook", "kernel": {"name": "python3"}})
        kernel_id = session["kernel"]["id"]
        return kernel_id, self.connect(kernel_id)

    def connect(self, kernel_id: str) -> Kernel:
        kernel = Kernel.attached(str(self.state / "runtime" / f"kernel-{kernel_id}.json"))
        self.kernels.append(kernel)
        return kernel

    def write_notebook(self, path: str) -> None:
        notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        self.api("PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": notebook})


@contextmanager
def jupyter_server(base: Path, *, upstream: str, key: str, settings: dict[str, Any] | None = None) -> Iterator[JupyterServer]:
    """``jupyter server`` with the extension, its upstream ``upstream`` and its key ``key`` (given
    in its environment, as ``ANTHROPIC_API_KEY``), ``settings`` for ``c.ClaudeServer``."""
    root, state = base / "root", base / "state"
    root.mkdir(parents=True)
    config = state / "config"
    config.mkdir(parents=True)
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"claude_magic": True, **{name: False for name in UNUSED}}}, "ClaudeServer": settings or {}})
    )
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_BASE_URL": upstream,
        "CLAUDE_MAGIC_HOME": str(state / "claude-magic"),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTER_DATA_DIR": str(state / "data"),
        "IPYTHONDIR": str(state / "ipython"),
    }
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    env.pop("JPY_SESSION_NAME", None)
    log = state / "server.log"
    command = [
        sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--debug", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, state, log, process)
    try:
        _wait_for(server)
        yield server
    finally:
        for kernel in server.kernels:
            kernel.client.stop_channels()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(server: JupyterServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter server exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        try:
            server.api("GET", "/api/status")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    raise RuntimeError(f"jupyter server did not start within 60 s:\n{server.log.read_text()[-3000:]}")


async def terminal_output(socket: Any, command: str, expected: str) -> str:
    """What a terminal shows after ``command`` (until ``expected`` shows, 20 s at most), typed into
    its websocket (``socket``: its URL, or a tornado ``HTTPRequest`` with the headers it needs)."""
    import asyncio

    from tornado.websocket import websocket_connect

    connection = await websocket_connect(socket)
    connection.write_message(json.dumps(["stdin", command + "\r"]))
    shown, deadline = "", time.monotonic() + 20
    try:
        while expected not in shown and (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(connection.read_message(), timeout=left)
            except asyncio.TimeoutError:
                break
            if message is None:
                break
            kind, *data = json.loads(message)
            shown += data[0] if kind == "stdout" and data else ""
    finally:
        connection.close()
    return shown
