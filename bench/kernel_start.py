"""What loading the magic at start adds to a kernel's start: ``--ext=claude_magic.autoload``.

The Jupyter server extension starts every Python kernel with that argument (ipykernel's alias of
``InteractiveShellApp.extra_extensions``). Kernels are started here with jupyter_client, as the
server starts them, with and without it, in turns (so that a busy machine weighs on both alike),
until they answer ``kernel_info``; then the magic is checked to be there. What is compared is the
kernel process's CPU time by then (``/proc/<pid>/stat``): a kernel's start is mostly its own work
(imports), and its wall time on a shared machine varies by more than what is measured. Medians of
the runs; target: at most 50 ms added. (Wall times are shown too.)

    .venv/bin/python bench/kernel_start.py [--runs 15] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from jupyter_client import KernelManager

from claude_magic.server.kernels import AUTOLOAD_EXTENSION
from timing import fresh_bytecode

TARGET = 0.050


TICKS = os.sysconf("SC_CLK_TCK")


def start(extra_arguments: list[str]) -> tuple[float, float, bool]:
    """A new kernel's CPU seconds and wall seconds until it answers, and whether it has %claude."""
    manager = KernelManager(kernel_name="python3")
    started = time.perf_counter()
    manager.start_kernel(extra_arguments=extra_arguments)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        wall = time.perf_counter() - started
        fields = Path(f"/proc/{manager.provisioner.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        check = "get_ipython().find_line_magic('claude') is not None"
        reply = client.execute_interactive("", user_expressions={"loaded": check}, output_hook=lambda message: None)
        loaded = reply["content"]["user_expressions"]["loaded"]["data"]["text/plain"] == "True"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return cpu, wall, loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--check", action="store_true", help="exit 1 when the magic adds more than 50 ms")
    args = parser.parse_args()
    fresh_bytecode()
    loading_arguments = [f"--ext={AUTOLOAD_EXTENSION}"]
    start([]), start(loading_arguments)  # warm the disk caches
    plain: list[tuple[float, float]] = []
    loading: list[tuple[float, float]] = []
    for _ in range(args.runs):
        cpu, wall, loaded = start([])
        assert not loaded
        plain.append((cpu, wall))
        cpu, wall, loaded = start(loading_arguments)
        assert loaded, "the kernel started without %claude"
        loading.append((cpu, wall))
    (plain_cpu, plain_wall), (loading_cpu, loading_wall) = (tuple(statistics.median(v) for v in zip(*runs)) for runs in (plain, loading))
    added = loading_cpu - plain_cpu
    print(f"kernel start until kernel_info, medians of {args.runs} in turns (CPU of the kernel process; wall)")
    print(f"  plain ipykernel                   {plain_cpu * 1000:7.1f} ms CPU  {plain_wall * 1000:7.1f} ms wall")
    print(f"  with --ext={AUTOLOAD_EXTENSION}  {loading_cpu * 1000:7.1f} ms CPU  {loading_wall * 1000:7.1f} ms wall")
    print(f"  added by the magic                {added * 1000:7.1f} ms CPU  (target <= {TARGET * 1000:.0f}: {'met' if added <= TARGET else 'MISSED'})")
    return 1 if args.check and added > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
