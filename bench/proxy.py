"""What the Jupyter server's proxy costs: CPU per streamed event in the server, and time to first byte.

The same answer of about 20,000 events (``[[words=40000]]``; the stand-in puts two words in a delta)
is read by a kernel-side client (``claude_magic.api.Client.stream``, every event and the final
message, as the magic reads it) straight from the stand-in, then through the proxy of a real
``jupyter server`` with claude-magic's extension (its upstream that stand-in, its key in its
environment; the client has a kernel's token, from a kernel the server started). Each runs in a
process of its own, so the CPU counted is theirs alone:

* the client's CPU per event (``time.thread_time`` of the reading thread), read directly;
* the server process's CPU per event (``/proc/<pid>/stat``) while the client reads through it;
* the time to the first byte of the body for a one-word answer, straight and through the proxy:
  what the proxy adds (median of interleaved runs).

Targets: the server spends at most 2x the client's own CPU per event, and adds at most 5 ms to the
first byte. Both are measured with the stand-in sending the events that are ready together in one
HTTP chunk (up to 64, as a busy server does) and with a chunk per event (``--events-per-chunk``).

    .venv/bin/python bench/proxy.py [--runs 5] [--events-per-chunk 64] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from claude_magic.api.client import Client
from claude_magic.api.protocol import MessageParam, MessageRequest
from claude_magic.api.settings import ClientSettings, Credentials

KEY = "sk-ant-bench-proxy-key"
MODEL = "claude-sonnet-5-5"
WORDS = 40_000
MAX_TOKENS = 64_000
PROMPT = f"Stream a long answer [[words={WORDS}]]"
TARGET_CPU_RATIO = 2.0
TARGET_ADDED_FIRST_BYTE = 0.005
TICKS = os.sysconf("SC_CLK_TCK")

STAND_IN = """
import sys
from claude_magic.testing import StandIn
server = StandIn(api_key={key!r}, events_per_chunk={per_chunk}).start()
print(server.base_url, flush=True)
sys.stdin.read()
server.stop()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Servers:
    """The stand-in and a Jupyter server with the extension in front of it, each a process."""

    def __init__(self, events_per_chunk: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="claude-bench-proxy-"))
        self.stand_in = subprocess.Popen(
            [sys.executable, "-c", STAND_IN.format(key=KEY, per_chunk=events_per_chunk)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.stand_in.stdout is not None
        self.upstream = self.stand_in.stdout.readline().strip()
        config = self.folder / "config"
        config.mkdir()
        settings = {"tier": "pro", "output_tokens_per_minute": 10_000_000, "input_tokens_per_minute": 10_000_000}
        (config / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"claude_magic": True}}, "ClaudeServer": settings}))
        port, self.token = free_port(), secrets.token_hex(16)
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": self.upstream,
            "CLAUDE_MAGIC_HOME": str(self.folder / "home"),
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_RUNTIME_DIR": str(self.folder / "runtime"),
            "JUPYTER_DATA_DIR": str(self.folder / "data"),
        }
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        command = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.folder}", "--ServerApp.log_level=WARN"]  # fmt: skip
        self.log = (self.folder / "server.log").open("wb")
        self.server = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        self._wait()
        self.kernel_token = self._kernel_token()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the Jupyter server did not start")

    def _kernel_token(self) -> str:
        """A kernel's token, read in a kernel the server started (the proxy takes no other)."""
        from jupyter_client import BlockingKernelClient

        kernel = self.api("POST", "/api/kernels", {"name": "python3"})["id"]
        client = BlockingKernelClient(connection_file=str(self.folder / "runtime" / f"kernel-{kernel}.json"))
        client.load_connection_file()
        client.start_channels(hb=False)
        client.wait_for_ready(timeout=60)
        shown: list[str] = []
        client.execute_interactive("import os; print(os.environ['ANTHROPIC_AUTH_TOKEN'])", output_hook=lambda m: shown.append(m["content"].get("text", "")))
        client.stop_channels()
        return "".join(shown).strip()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def close(self) -> None:
        self.server.terminate()
        self.server.wait(timeout=20)
        assert self.stand_in.stdin is not None
        self.stand_in.stdin.close()
        self.stand_in.wait(timeout=10)


def read_long_answer(client: Client) -> tuple[int, float]:
    """Events of the long answer, and the reading thread's CPU seconds."""
    request = MessageRequest(model=MODEL, max_tokens=MAX_TOKENS, messages=[MessageParam(role="user", content=PROMPT)])
    started = time.thread_time()
    with client.stream(request) as stream:
        events = sum(1 for _ in stream)
        assert stream.message.text
    return events, time.thread_time() - started


def first_byte(client: Client) -> float:
    """Seconds from sending a one-word question to the first byte of the answer's body."""
    body = client.message_body(MessageRequest(model=MODEL, max_tokens=16, messages=[MessageParam(role="user", content="Hi [[words=1]]")]), stream=True)
    started = time.perf_counter()
    with client.http.stream("POST", client._url("/v1/messages"), json=body, headers=client._headers()) as response:
        next(response.iter_raw())
        return time.perf_counter() - started


def measure(events_per_chunk: int, runs: int) -> dict[str, float]:
    servers = Servers(events_per_chunk)
    direct = Client(ClientSettings(credentials=Credentials(api_key=KEY), base_url=servers.upstream, max_retries=0, timeout=300))
    proxied = Client(ClientSettings(credentials=Credentials(auth_token=servers.kernel_token), base_url=f"{servers.url}/claude-magic", max_retries=0, timeout=300))
    try:
        read_long_answer(direct), read_long_answer(proxied)  # warm up both paths
        client_cpu, server_cpu = [], []
        for _ in range(runs):
            events, cpu = read_long_answer(direct)
            client_cpu.append(cpu / events)
            before = servers.cpu_seconds()
            proxied_events, _ = read_long_answer(proxied)
            server_cpu.append((servers.cpu_seconds() - before) / proxied_events)
            assert proxied_events == events, (proxied_events, events)
        straight, through = [], []
        for _ in range(max(runs * 6, 30)):
            straight.append(first_byte(direct))
            through.append(first_byte(proxied))
    finally:
        direct.close()
        proxied.close()
        servers.close()
    return {
        "events": events,
        "client_cpu": statistics.median(client_cpu),
        "server_cpu": statistics.median(server_cpu),
        "first_byte_direct": statistics.median(straight),
        "first_byte_proxied": statistics.median(through),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events-per-chunk", type=int, nargs="*", default=[64, 1], help="most events the stand-in puts in one HTTP chunk")
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless server CPU <= {TARGET_CPU_RATIO}x client CPU per event and <= 5 ms added to the first byte")
    args = parser.parse_args()
    missed = False
    for per_chunk in args.events_per_chunk:
        figures = measure(per_chunk, args.runs)
        ratio = figures["server_cpu"] / figures["client_cpu"]
        added = figures["first_byte_proxied"] - figures["first_byte_direct"]
        cpu_ok, latency_ok = ratio <= TARGET_CPU_RATIO, added <= TARGET_ADDED_FIRST_BYTE
        missed |= not (cpu_ok and latency_ok)
        print(f"{figures['events']:,.0f} events, up to {per_chunk} per HTTP chunk; medians of {args.runs} runs (first byte: {max(args.runs * 6, 30)})")
        print(f"  client CPU per event (reading thread, direct) {figures['client_cpu'] * 1e6:7.2f} µs")
        print(f"  server CPU per event (Jupyter server process) {figures['server_cpu'] * 1e6:7.2f} µs   "
              f"= {ratio:.2f}x the client's (target <= {TARGET_CPU_RATIO}: {'met' if cpu_ok else 'MISSED'})")  # fmt: skip
        print(f"  first byte: {figures['first_byte_direct'] * 1000:.2f} ms direct, {figures['first_byte_proxied'] * 1000:.2f} ms through the proxy, "
              f"+{added * 1000:.2f} ms (target <= 5: {'met' if latency_ok else 'MISSED'})")  # fmt: skip
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
