"""The one way the benchmarks time a piece of work: the median of several runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(work: Callable[[], object], runs: int, *, warm: bool = False) -> float:
    """The median seconds ``work`` takes over ``runs`` runs (after one untimed run if ``warm``)."""
    if warm:
        work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
