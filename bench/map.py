"""Jobs over rows (``claude_magic.map``): throughput under a rate limit, the progress bar's cost, and
the memory 100,000 rows of Message Batch results take.

1. 1,000 rows against a stand-in that allows R requests a second (a minute's limit scaled down to
   keep the run short), the kernel side told the same limit: the rows a second, against R (at
   least 90 %), and the 429s the stand-in had to answer (none).
2. The same job's CPU time, and the share of it the progress bar took (under 2 %).
3. 100,000 rows as one Message Batch: the peak memory above the input's own (under 200 MB), in a
   process of its own so that nothing else weighs on it.

The stand-in runs in a process of its own, so that its work is not counted as the job's.

    .venv/bin/python bench/map.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ROWS = 1_000
RATE = 50
"""Requests a second the stand-in allows (3,000 a minute, scaled into a one-second window)."""
BATCH_ROWS = 100_000
SERVE = """
import json, sys
from claude_magic.testing import StandIn
server = StandIn().start()
server.batches.speed = 1000.0
if len(sys.argv) > 1:
    server.limit_requests(int(sys.argv[1]), float(sys.argv[2]))
print(server.base_url, flush=True)
sys.stdin.readline()
asked = server.message_requests
print(json.dumps({"rate_limited": server.rate_limited, "answered": sum(r.status == 200 for r in asked),
                  "span": max(r.ended or 0 for r in asked) - min(r.received for r in asked) if asked else 0}), flush=True)
"""


@contextmanager
def stand_in(*limit: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """A stand-in in a process of its own (optionally limited to ``requests, window``); what it saw, after."""
    process = subprocess.Popen([sys.executable, "-c", SERVE, *map(str, limit)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdin is not None
    seen: dict[str, Any] = {}
    try:
        yield process.stdout.readline().strip(), seen
        process.stdin.write("\n")
        process.stdin.flush()
        seen.update(json.loads(process.stdout.readline()))
    finally:
        process.kill()
        process.wait()


def point_at(base_url: str) -> Any:
    """The magic's settings of this process (a script's own), pointed at the stand-in."""
    os.environ.update({"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "sk-ant-bench", "CLAUDE_MAGIC_HOME": tempfile.mkdtemp()})
    import claude_magic

    magics = claude_magic._magics()
    magics.confirm_above_usd = None
    magics.batch_above_rows = None
    return magics


def throughput() -> None:
    import claude_magic
    from claude_magic.ui import progress

    drawing = [0.0]
    for name in ("__call__", "close"):
        original = getattr(progress.ProgressBar, name)

        def timed(self: Any, *args: Any, _original: Any = original) -> Any:
            started = time.process_time()
            try:
                return _original(self, *args)
            finally:
                drawing[0] += time.process_time() - started

        setattr(progress.ProgressBar, name, timed)
    with stand_in(RATE, 1.0) as (base_url, seen):
        magics = point_at(base_url)
        magics.rate_limits = f"{RATE}/100000000/100000000/1"
        rows = [f"row {i}" for i in range(ROWS)]
        cpu, wall = time.process_time(), time.perf_counter()
        with open(os.devnull, "w") as quiet:
            stderr, sys.stderr = sys.stderr, quiet
            try:
                result = claude_magic.map("Label {item}", rows, max_tokens=64, concurrency=16)
            finally:
                sys.stderr = stderr
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert all(row["error"] is None for row in result), [row["error"] for row in result if row["error"]][:3]
    per_second = ROWS / wall
    print(f"{ROWS:,} rows under {RATE} requests a second: {wall:.1f} s, {per_second:.1f} rows a second = {per_second / RATE:.0%} of the limit")
    print(f"  the stand-in saw {seen['answered']:,} answered over {seen['span']:.1f} s ({seen['answered'] / seen['span']:.1f} a second) and answered {seen['rate_limited']} 429s")
    print(f"  the job's CPU: {cpu:.2f} s, of which the progress bar {drawing[0] * 1000:.1f} ms = {drawing[0] / cpu:.2%}")


def batch_memory() -> None:
    """In a process of its own: the peak memory of 100,000 rows of batch results above the input's."""
    import pandas as pd

    with stand_in() as (base_url, _):
        point_at(base_url)
        import claude_magic

        claude_magic.map("Warm up {item}", ["everything a kernel would have loaded"], batch=True)  # imports, clients
        before = _peak_mb()
        reviews = pd.DataFrame({"review": [f"review number {i}: the battery lasts {i % 9} days" for i in range(BATCH_ROWS)]})
        baseline = _peak_mb()
        started = time.perf_counter()
        with open(os.devnull, "w") as quiet:
            stderr, stdout, sys.stderr, sys.stdout = sys.stderr, sys.stdout, quiet, quiet
            try:
                result = claude_magic.map("Label this review: {review}", reviews, max_tokens=64, batch=True)
            finally:
                sys.stderr, sys.stdout = stderr, stdout
        took = time.perf_counter() - started
        peak = _peak_mb()
    assert len(result) == BATCH_ROWS and result.error.isna().all(), result.error.dropna().head()
    print(f"{BATCH_ROWS:,} rows as a Message Batch: {took:.0f} s; the input took {baseline - before:.0f} MB, the job's peak {peak - baseline:.0f} MB above it (limit 200 MB)")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    if sys.argv[1:] == ["--batch-memory"]:
        batch_memory()
        return
    throughput()
    subprocess.run([sys.executable, __file__, "--batch-memory"], check=True)


if __name__ == "__main__":
    main()
