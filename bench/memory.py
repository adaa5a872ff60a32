"""A kernel's memory over a long conversation with images: what it keeps, and its peak.

A real IPython kernel (with a notebook name, so the conversation is also stored) asks
``%claude -a img`` N times, each time with a different ~1 MB PNG of noise, against the
stand-in (in this process, forgetting each request once answered: only the kernel is
measured). Inside the kernel: resident memory (``VmRSS``, peak ``VmHWM``) and what Python
allocated (``tracemalloc``, started after the set-up and a first question without an
image), before the first image, after the last one, and again after ``gc.collect()``.

The ratios divide what the kernel gained by the megabytes of images attached: 1.0 is
"each image held once, as its bytes"; base64 text is 1.33; request bodies kept alive add to
it. The peak is compared with the same run's baseline.

    .venv/bin/python bench/memory.py [--turns 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

from jupyter_client import KernelManager

from claude_magic.testing import StandIn

KEY = "sk-ant-bench-memory-key"
SETUP = """
import gc, io, re, tracemalloc
import numpy as np
from PIL import Image as _Image

def _png(seed):
    '''About 1 MB of PNG: noise does not compress.'''
    pixels = np.random.default_rng(seed).integers(0, 256, (580, 580, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    _Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()

def _memory():
    status = open("/proc/self/status").read()
    rss, hwm = (int(re.search(name + r":\\s+(\\d+)", status)[1]) * 1024 for name in ("VmRSS", "VmHWM"))
    traced, traced_peak = tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)
    return dict(rss=rss, hwm=hwm, traced=traced, traced_peak=traced_peak)

img = _png(10**6)
%load_ext claude_magic
"""
MB = 1024 * 1024


class KernelDriver:
    """A kernel and a blocking client: run code, read expressions back."""

    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, **expressions: str) -> dict[str, Any]:
        """Run ``code`` quietly; return ``expressions`` evaluated after it, and the status."""
        reply = self.client.execute_interactive(code, user_expressions=expressions, output_hook=lambda message: None, timeout=300)
        content = reply["content"]
        values = {name: eval(found["data"]["text/plain"]) for name, found in content.get("user_expressions", {}).items()}
        return {"status": content["status"], **values}

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def measure(turns: int) -> dict[str, Any]:
    with StandIn(api_key=KEY) as server, tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": KEY, "CLAUDE_MAGIC_HOME": home, "JPY_SESSION_NAME": f"{home}/memory.ipynb"}
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        kernel = KernelDriver(env)
        try:
            assert kernel.run(SETUP)["status"] == "ok"
            image_bytes = kernel.run("", size="len(img)")["size"]
            assert kernel.run("%claude A first question, to load what asking needs")["status"] == "ok"
            before = kernel.run("gc.collect(); tracemalloc.start()", memory="_memory()")["memory"]
            failed = 0
            for n in range(turns):
                failed += kernel.run(f"img = _png({n})\n%claude -a img Turn {n}: what is in this image?")["status"] != "ok"
                server.reset()
            after = kernel.run("", memory="_memory()")["memory"]
            collected = kernel.run("gc.collect()", memory="_memory()")["memory"]
        finally:
            kernel.close()
    return {"image_bytes": image_bytes, "before": before, "after": after, "collected": collected, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=100)
    args = parser.parse_args()
    found = measure(args.turns)
    before, after, collected = found["before"], found["after"], found["collected"]
    attached = args.turns * found["image_bytes"]
    print(f"{args.turns} questions in a real kernel, each attaching a different {found['image_bytes'] / MB:.2f} MB PNG "
          f"({attached / MB:.0f} MB in all); {found['failed']} failed")
    print(f"  resident: {before['rss'] / MB:.0f} MB before -> {after['rss'] / MB:.0f} MB after -> {collected['rss'] / MB:.0f} MB after gc.collect(); "
          f"peak {after['hwm'] / MB:.0f} MB")
    print(f"    kept per MB attached: {(after['rss'] - before['rss']) / attached:.2f} ({(collected['rss'] - before['rss']) / attached:.2f} after gc.collect()); "
          f"peak / baseline {after['hwm'] / before['rss']:.1f}x")
    print(f"  Python allocations: +{(after['traced'] - before['traced']) / MB:.0f} MB after -> +{(collected['traced'] - before['traced']) / MB:.0f} MB "
          f"after gc.collect(); peak +{(after['traced_peak'] - before['traced']) / MB:.0f} MB")
    print(f"    kept per MB attached: {(after['traced'] - before['traced']) / attached:.2f} "
          f"({(collected['traced'] - before['traced']) / attached:.2f} after gc.collect()); "
          f"peak per MB attached {(after['traced_peak'] - before['traced']) / attached:.2f}")


if __name__ == "__main__":
    main()
