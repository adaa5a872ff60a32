"""The one way the benchmarks time a piece of work: the median of several runs; and the state of
the package's bytecode a start-up figure is measured with."""

from __future__ import annotations

import compileall
import statistics
import time
from collections.abc import Callable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "claude_magic"


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


def fresh_bytecode() -> None:
    """Compile the package's modules whose bytecode is missing or stale, as an installed package's
    is (pip compiles a wheel's modules when it installs them; an editable install writes them on
    first import). Otherwise a start-up figure measures the compiler: under
    ``PYTHONDONTWRITEBYTECODE`` (set on some machines, these included) a module whose source
    changed since its ``.pyc`` is compiled again in every new interpreter."""
    compileall.compile_dir(PACKAGE, quiet=1)
