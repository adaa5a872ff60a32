"""Start-up cost: ``%load_ext claude_magic`` in a running IPython, and the first request's imports.

Each figure is measured in a fresh interpreter (imports are cached after the first time),
several times, median reported. The baseline is ``import anthropic`` in the same way.

    .venv/bin/python bench/startup.py [--check]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from timing import fresh_bytecode

LOAD_EXT = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
started = time.perf_counter()
shell.run_line_magic("load_ext", "claude_magic")
print(time.perf_counter() - started)
"""

FIRST_REQUEST_IMPORTS = """
import time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "claude_magic")
started = time.perf_counter()
import claude_magic.api.client, claude_magic.core.session, claude_magic.ui.render, claude_magic.attach.interpolate, claude_magic.api.protocol
print(time.perf_counter() - started)
"""

IMPORT_SDK = """
import time
started = time.perf_counter()
import anthropic
print(time.perf_counter() - started)
"""

LIMITS = {"load_ext": 0.050, "first request imports": 0.250}


def measure(snippet: str, runs: int) -> float:
    times = [float(subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="exit 1 when a limit is missed")
    args = parser.parse_args()
    fresh_bytecode()
    figures = {
        "load_ext": measure(LOAD_EXT, args.runs),
        "first request imports": measure(FIRST_REQUEST_IMPORTS, args.runs),
    }
    sdk = measure(IMPORT_SDK, args.runs)
    print(f"median of {args.runs} fresh interpreters")
    for name, seconds in figures.items():
        print(f"  {name:<22} {seconds * 1000:7.1f} ms   (limit {LIMITS[name] * 1000:.0f} ms)")
    print(f"  {'import anthropic':<22} {sdk * 1000:7.1f} ms   (baseline; first request imports are "
          f"{figures['first request imports'] / sdk:.2f}x of it)")
    missed = [name for name, seconds in figures.items() if seconds > LIMITS[name]]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
