"""The stand-in's command line, as `make lab` uses it: a command run against a fresh stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_run_points_a_command_and_its_kernels_at_the_stand_in(tmp_path: Path) -> None:
    script = tmp_path / "ask.ipy"
    script.write_text("%load_ext claude_magic\n%claude Are you there\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "claude_magic.testing", "run", "--delay", "0", "--",
         sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=nocolor", str(script)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "talks to the offline stand-in at http://127.0.0.1:" in done.stderr
    assert "Stand-in answer** to: “Are you there”" in done.stdout
    assert "Answered by the claude-magic offline stand-in" in done.stdout


def test_run_passes_the_commands_exit_status_on() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claude_magic.testing", "run", "--", sys.executable, "-c", "raise SystemExit(3)"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 3


def test_run_without_a_command_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "claude_magic.testing", "run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs a command" in done.stderr


@pytest.mark.parametrize("flag", ["--help"])
def test_help(flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "claude_magic.testing", flag], capture_output=True, text=True, timeout=60)
    assert "serve" in done.stdout and "run" in done.stdout
