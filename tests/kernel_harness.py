"""Drive a real IPython kernel the way JupyterLab does, and collect what the user would see.

nbclient runs whole notebooks but sends no cell ids; JupyterLab sends each cell's id in the
execute request's metadata (``cellId``), which is what makes re-running a cell replace its
exchange. This harness sends it too, keeps every iopub message, and folds them into the
outputs a notebook would save (``update_display_data`` applied in place, data and metadata, as
nbclient does).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client import KernelManager


@dataclass
class CellResult:
    messages: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.reply.get("status", "?")

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["header"]["msg_type"] == msg_type]

    @property
    def stdout(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o["text"] for o in self.outputs if o["output_type"] == "stream" and o["name"] == "stderr")

    @property
    def error(self) -> dict[str, Any] | None:
        errors = [o for o in self.outputs if o["output_type"] == "error"]
        return errors[0] if errors else None

    def displays(self) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o["output_type"] in ("display_data", "execute_result")]

    def markdown(self) -> list[str]:
        return [o["data"]["text/markdown"] for o in self.displays() if "text/markdown" in o["data"]]

    def everything(self) -> str:
        """Every message's content as JSON: for checks that something appears nowhere."""
        return json.dumps([m["content"] for m in self.messages]) + json.dumps(self.reply)

    @property
    def footer(self) -> str:
        """The last display's plain text: an answer's footer."""
        return str(self.displays()[-1]["data"]["text/plain"])


def stand_in_environment(base_url: str, key: str, home: Any, notebook: str | None = None) -> dict[str, str | None]:
    """A kernel's environment against a stand-in: its URL and key, a home of its own, and the
    notebook it runs (None: none, so the conversation lives for the session only)."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_AUTH_TOKEN": None,
        "CLAUDE_MAGIC_HOME": str(home),
        "JPY_SESSION_NAME": notebook,
    }


class Kernel:
    def __init__(self, env: dict[str, str | None] | None = None, launcher: list[str] | None = None) -> None:
        """A kernel with ``env`` over this process's environment (None: unset), started through
        ``launcher`` when given (a command that ends by running the kernel command after it)."""
        environment = {**os.environ}
        for name, value in (env or {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        self.manager: KernelManager | None = KernelManager(kernel_name="python3")
        if launcher:  # jupyter_client makes "python" this interpreter only in first place: do it here
            spec = self.manager.kernel_spec
            spec.argv[:] = [*launcher, sys.executable, *spec.argv[1:]]
        self.manager.start_kernel(env=environment)
        self._connect(self.manager.client())

    def _connect(self, client: Any, *, heartbeat: bool = True) -> None:
        self.client = client
        self.client.start_channels(hb=heartbeat)
        self.client.wait_for_ready(timeout=60)

    @classmethod
    def with_magic(cls, env: dict[str, str | None]) -> Kernel:
        """A kernel with ``env`` that has loaded the magic."""
        kernel = cls(env)
        kernel.ok("%load_ext claude_magic")
        return kernel

    @classmethod
    def attached(cls, connection_file: str, wait: float = 30) -> Kernel:
        """A kernel someone else started (a Jupyter server), reached through its connection file
        (waiting up to ``wait`` seconds for the server to write it); closing it closes only the connection."""
        from jupyter_client import BlockingKernelClient

        deadline = time.monotonic() + wait
        while not os.path.exists(connection_file) and time.monotonic() < deadline:
            time.sleep(0.05)

        kernel = cls.__new__(cls)
        kernel.manager = None
        client = BlockingKernelClient(connection_file=connection_file)
        client.load_connection_file()
        kernel._connect(client, heartbeat=False)  # its server watches it; a client's heartbeat can miss the start
        return kernel

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager is not None:
            self.manager.shutdown_kernel(now=True)

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, code: str, cell_id: str | None = None, *, allow_stdin: bool = False) -> str:
        """Send an execute request as JupyterLab does (``allow_stdin``: as it does, able to answer
        ``input()``; off, as nbclient does); returns its message id."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": allow_stdin, "stop_on_error": True}
        message = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.client.shell_channel.send(message)
        return message["header"]["msg_id"]

    def collect(self, msg_id: str, result: CellResult | None = None, *, until: Any = None, timeout: float = 60) -> CellResult:
        """Gather iopub messages for ``msg_id`` until the kernel is idle (or ``until(result)``)."""
        result = result or CellResult()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            result.messages.append(message)
            _fold(result.outputs, message)
            if message["header"]["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                result.reply = self._reply(msg_id)
                return result
            if until is not None and until(result):
                return result
        raise TimeoutError(f"the kernel did not finish within {timeout} s")

    def _reply(self, msg_id: str) -> dict[str, Any]:
        while True:
            reply = self.client.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> CellResult:
        return self.collect(self.submit(code, cell_id), timeout=timeout)

    def ok(self, code: str, cell_id: str | None = None) -> CellResult:
        """Run ``code``, which must succeed."""
        result = self.run(code, cell_id)
        assert result.status == "ok", result.outputs
        return result

    def run_answering(self, code: str, reply: str, timeout: float = 60) -> tuple[str, CellResult]:
        """Run ``code``, answer the ``input()`` it asks as a user typing ``reply`` would; returns
        the prompt shown and the cell's result."""
        msg_id = self.submit(code, allow_stdin=True)
        request = self.client.get_stdin_msg(timeout=timeout)
        assert request["header"]["msg_type"] == "input_request", request
        self.client.input(reply)
        return request["content"]["prompt"], self.collect(msg_id, timeout=timeout)

    def interrupt(self) -> None:
        assert self.manager is not None, "a kernel of a Jupyter server is interrupted through the server"
        self.manager.interrupt_kernel()


def _fold(outputs: list[dict[str, Any]], message: dict[str, Any]) -> None:
    kind = message["header"]["msg_type"]
    content = message["content"]
    if kind == "stream":
        if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == content["name"]:
            outputs[-1]["text"] += content["text"]
        else:
            outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
    elif kind in ("display_data", "execute_result"):
        display_id = content.get("transient", {}).get("display_id")
        outputs.append({"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {}), "display_id": display_id})
    elif kind == "update_display_data":  # its data and metadata replace the output's, as in JupyterLab and nbclient
        display_id = content.get("transient", {}).get("display_id")
        for output in outputs:
            if output.get("display_id") == display_id:
                output["data"], output["metadata"] = content["data"], content.get("metadata", {})
    elif kind == "error":
        outputs.append({"output_type": "error", **{k: content[k] for k in ("ename", "evalue", "traceback")}})
