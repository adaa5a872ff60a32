"""The kernel's work before each question is sent: fitting the history, building the request.

``ClaudeSession.prepare`` (context budget, repeated images, cache breakpoints, the request
model) for one more question at the end of a conversation of 100 and of 400 text turns
(a line asked, ~200 words answered), and of 30 turns that each attached a different
~1 MB image. No I/O: the same work happens whatever the server.

The baseline, in the same run, is what sending needs anyway: ``json.dumps`` of the request
body. The growth from 100 to 400 turns is the figure to watch: re-estimating every earlier
exchange on every question makes it grow with the history, on top of the baseline's own.

    .venv/bin/python bench/prepare.py [--runs 15]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
from typing import Any

import numpy as np
from PIL import Image
from timing import median_seconds

from claude_magic.api.client import Client
from claude_magic.api.settings import ClientSettings, Credentials
from claude_magic.core.conversation import CellRun, Exchange
from claude_magic.core.session import AskOptions, ClaudeSession

OPTIONS = AskOptions(model="claude-sonnet-5-5", max_tokens=4096)
ANSWER = " ".join(f"word{n % 97}" for n in range(200))


def image_block(seed: int) -> dict[str, Any]:
    pixels = np.random.default_rng(seed).integers(0, 256, (580, 580, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(buffer.getvalue()).decode()}}


def session_with(turns: int, images: bool = False) -> ClaudeSession:
    session = ClaudeSession()
    for n in range(turns):
        question = [*([image_block(n)] if images else []), {"type": "text", "text": f"Question {n}: what stands out in this month's sales?"}]
        session.conversation.exchanges.append(Exchange(question, [{"type": "text", "text": ANSWER}], CellRun(f"cell-{n}", n, n)))
    return session


def figures(session: ClaudeSession, runs: int) -> tuple[float, float]:
    """Median seconds of ``prepare`` and of the baseline, for the next question."""
    question = [{"type": "text", "text": "And what about next month?"}]
    client = Client(ClientSettings(credentials=Credentials(api_key="sk-ant-bench")))
    request = session.prepare(question, OPTIONS).request
    body = client.message_body(request, stream=True)
    prepare = median_seconds(lambda: session.prepare(question, OPTIONS), runs, warm=True)
    baseline = median_seconds(lambda: json.dumps(body, ensure_ascii=False, separators=(",", ":")), runs, warm=True)
    return prepare, baseline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"ClaudeSession.prepare for the next question, median of {args.runs}; baseline: json.dumps of the request body")
    found = {}
    for name, turns, images in (("100 text turns", 100, False), ("400 text turns", 400, False), ("30 turns with a 1 MB image each", 30, True)):
        prepare, baseline = figures(session_with(turns, images), args.runs)
        found[name] = prepare
        print(f"  {name:<32} prepare {prepare * 1000:7.2f} ms   baseline {baseline * 1000:7.2f} ms   ratio {prepare / baseline:5.2f}")
    print(f"  400 / 100 turns: prepare {found['400 text turns'] / found['100 text turns']:.2f}x")


if __name__ == "__main__":
    main()
