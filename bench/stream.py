"""CPU cost of reading a long streamed answer: our client against the official SDK and a floor.

The stand-in runs in a separate process, so only the reading side's CPU is counted in this
one (``time.process_time``). It streams an answer of about 20,000 text deltas
(``[[words=40000]]``; the stand-in puts two words in a delta), read three ways:

* floor: httpx ``iter_bytes``, events split on blank lines, ``json.loads`` on each data line;
* ours: ``claude_magic.api.client.Client.stream``, every event, then the final message;
* SDK: ``anthropic.Anthropic().messages.stream``, every event, then ``get_final_message()``.

Clients are built and warmed up before timing; each figure is the median of several runs,
reported per 1,000 events on the wire. The stand-in sends events that are ready together in
one HTTP chunk (up to 64 by default, as a busy server does); ``--events-per-chunk 1`` sends a
chunk per event, where httpx's per-chunk cost dominates every reader, the floor included.

    .venv/bin/python bench/stream.py [--runs 5] [--events-per-chunk 64] [--check]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import anthropic
import httpx

from claude_magic.api.client import Client
from claude_magic.api.protocol import MessageParam, MessageRequest
from claude_magic.api.settings import ClientSettings, Credentials

WORDS = 40_000
MODEL = "claude-sonnet-5-5"
MAX_TOKENS = 64_000
KEY = "sk-ant-bench-stand-in-key"
PROMPT = f"Stream a long answer [[words={WORDS}]]"
TARGET_VS_SDK = 0.15
TARGET_VS_FLOOR = 2.5

SERVER = """
import sys
from claude_magic.testing import StandIn
server = StandIn(api_key={key!r}, delay=0.0, events_per_chunk={per_chunk}).start()
print(server.base_url, flush=True)
sys.stdin.read()  # serve until the benchmark closes our stdin
server.stop()
"""


def start_stand_in(events_per_chunk: int) -> tuple[subprocess.Popen[str], str]:
    server = SERVER.format(key=KEY, per_chunk=events_per_chunk)
    process = subprocess.Popen([sys.executable, "-c", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http://"):
        process.kill()
        raise SystemExit(f"the stand-in did not start (it printed {base_url!r})")
    return process, base_url


def stop_stand_in(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


# --- the three readers; each returns (events it saw, answer length) -----------------------------


def read_floor(http: httpx.Client) -> tuple[int, int]:
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    events = chars = 0
    buffer = b""
    with http.stream("POST", "/v1/messages", json=body, headers=headers) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                for line in block.split(b"\n"):
                    if line.startswith(b"data:"):
                        data = json.loads(line[5:])
                        events += 1
                        if data["type"] == "content_block_delta":
                            chars += len(data["delta"]["text"])
    return events, chars


def read_ours(client: Client) -> tuple[int, int]:
    request = MessageRequest(model=MODEL, max_tokens=MAX_TOKENS, messages=[MessageParam(role="user", content=PROMPT)])
    with client.stream(request) as stream:
        events = sum(1 for _ in stream)
        message = stream.message
    return events, len(message.text)


def read_sdk(sdk: anthropic.Anthropic) -> tuple[int, int]:
    with sdk.messages.stream(
        model=MODEL, max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        events = sum(1 for _ in stream)  # the SDK adds its own derived events to the wire's
        message = stream.get_final_message()
    return events, len(message.content[0].text)  # type: ignore[union-attr]


def cpu_cost(read: Callable[[], tuple[int, int]], runs: int) -> tuple[float, int, int]:
    """Median CPU seconds of ``read`` over ``runs`` runs after a warm-up, and what it saw."""
    seen = read()
    costs = []
    for _ in range(runs):
        started = time.process_time()
        result = read()
        costs.append(time.process_time() - started)
        assert result == seen, (result, seen)
    return statistics.median(costs), *seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events-per-chunk", type=int, default=64, help="most events the stand-in puts in one HTTP chunk")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless ours <= {TARGET_VS_SDK}x SDK and <= {TARGET_VS_FLOOR}x floor",
    )
    args = parser.parse_args()

    process, base_url = start_stand_in(args.events_per_chunk)
    http = httpx.Client(base_url=base_url, timeout=120.0)
    ours = Client(ClientSettings(credentials=Credentials(api_key=KEY), base_url=base_url, max_retries=0, timeout=120.0))
    sdk = anthropic.Anthropic(api_key=KEY, base_url=base_url, max_retries=0, timeout=120.0)
    readers: dict[str, Callable[[], tuple[int, int]]] = {
        "floor (httpx, split, json.loads)": lambda: read_floor(http),
        "ours (claude_magic Client.stream)": lambda: read_ours(ours),
        "SDK (anthropic messages.stream)": lambda: read_sdk(sdk),
    }
    try:
        results: dict[str, Any] = {name: cpu_cost(read, args.runs) for name, read in readers.items()}
    finally:
        http.close()
        ours.close()
        sdk.close()
        stop_stand_in(process)

    (floor, wire_events, chars), (mine, our_events, our_chars), (theirs, _, sdk_chars) = results.values()
    if not chars == our_chars == sdk_chars:
        raise SystemExit(f"the readers disagree on the answer's length: {chars}, {our_chars}, {sdk_chars}")
    if our_events != wire_events:
        raise SystemExit(f"our client saw {our_events} events, the wire carried {wire_events}")
    deltas = wire_events - 6  # message_start, block start, ping, block stop, message_delta, message_stop
    print(
        f"{wire_events:,} events on the wire ({deltas:,} text deltas, {chars:,} characters), "
        f"up to {args.events_per_chunk} per HTTP chunk; stand-in in another process; CPU in this process, "
        f"median of {args.runs} runs"
    )
    for name, (cost, events, _) in results.items():
        print(
            f"  {name:36} {cost * 1000:8.1f} ms  {cost * 1000 / wire_events * 1000:6.2f} ms per 1,000 events"
            f"  ({events:,} events yielded)"
        )
    vs_sdk, vs_floor = mine / theirs, mine / floor
    ok_sdk, ok_floor = vs_sdk <= TARGET_VS_SDK, vs_floor <= TARGET_VS_FLOOR
    print(f"ours / SDK   = {vs_sdk:5.2f}  (target <= {TARGET_VS_SDK}: {'met' if ok_sdk else 'MISSED'})")
    print(f"ours / floor = {vs_floor:5.2f}  (target <= {TARGET_VS_FLOOR}: {'met' if ok_floor else 'MISSED'})")
    return 1 if args.check and not (ok_sdk and ok_floor) else 0


if __name__ == "__main__":
    sys.exit(main())
