"""The stand-in's command line, as `make lab` uses it: a command run against a fresh stand-in."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
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


# --- signals: the wrapper outlives the signals meant for its command, and passes on the ones sent to it alone ---------

# A command that, on SIGINT or SIGTERM, counts what it received for a moment, checks the stand-in still answers,
# says so and exits with a code of its own: the wrapper must wait for all of that and exit with that code.
SIGNALLED_COMMAND = """
import os, signal, sys, time, urllib.request
received = []
signal.signal(signal.SIGINT, lambda signum, frame: received.append("SIGINT"))
signal.signal(signal.SIGTERM, lambda signum, frame: received.append("SIGTERM"))
print("ready", flush=True)
deadline = time.monotonic() + 20
while not received:
    if time.monotonic() > deadline:
        sys.exit("no signal came")
    time.sleep(0.01)
time.sleep(0.5)  # a signal passed on twice arrives in the meantime
request = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/models",
                                 headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"})
status = urllib.request.urlopen(request, timeout=10).status
print(f"received {'+'.join(received)}; the stand-in answered {status}", flush=True)
sys.exit({"SIGINT": 0, "SIGTERM": 7}[received[0]])
"""


def _wrapper_argv(tmp_path: Path, knows_the_sender: bool = True) -> list[str]:
    """The wrapper running SIGNALLED_COMMAND; without knowing the sender, as on macOS and Windows."""
    command = tmp_path / "signalled.py"
    command.write_text(SIGNALLED_COMMAND)
    run = ["run", "--", sys.executable, str(command)]
    if knows_the_sender:
        return [sys.executable, "-m", "claude_magic.testing", *run]
    code = ("import sys; import claude_magic.testing.child as child; child.KNOWS_THE_SENDER = False; "
            f"from claude_magic.testing.__main__ import main; sys.exit(main({run!r}))")
    return [sys.executable, "-c", code]


def _signal_the_wrapper(tmp_path: Path, signum: int, knows_the_sender: bool = True) -> tuple[int, str]:
    """Start the wrapper without a terminal, send ``signum`` to it alone once its command is ready."""
    wrapper = subprocess.Popen(_wrapper_argv(tmp_path, knows_the_sender), stdout=subprocess.PIPE, text=True)
    assert wrapper.stdout is not None and wrapper.stdout.readline() == "ready\n"
    wrapper.send_signal(signum)
    out, _ = wrapper.communicate(timeout=30)
    return wrapper.returncode, out


def test_a_sigint_sent_to_the_wrapper_alone_is_passed_on_and_the_wrapper_exits_with_the_command(tmp_path: Path) -> None:
    returncode, out = _signal_the_wrapper(tmp_path, signal.SIGINT)
    assert out == "received SIGINT; the stand-in answered 200\n"
    assert returncode == 0


@pytest.mark.parametrize("knows_the_sender", [True, False], ids=["linux", "elsewhere"])
def test_a_sigterm_is_passed_on(tmp_path: Path, knows_the_sender: bool) -> None:
    returncode, out = _signal_the_wrapper(tmp_path, signal.SIGTERM, knows_the_sender)
    assert out == "received SIGTERM; the stand-in answered 200\n"
    assert returncode == 7


@pytest.mark.parametrize("knows_the_sender", [True, False], ids=["linux", "elsewhere"])
def test_ctrl_c_in_a_terminal_reaches_the_command_once_and_the_wrapper_waits_for_it(
    tmp_path: Path, knows_the_sender: bool
) -> None:
    """The terminal sends SIGINT to its whole foreground group, the wrapper and its command: the command gets one."""
    pid, terminal = pty.fork()  # the child leads a new session, with the pseudo-terminal as its controlling terminal
    if pid == 0:
        argv = _wrapper_argv(tmp_path, knows_the_sender)
        os.execv(argv[0], argv)
    screen = _read_until(terminal, "ready")
    os.write(terminal, b"\x03")  # Ctrl-C
    screen += _read_until(terminal, None)
    _, status = os.waitpid(pid, 0)
    assert "received SIGINT; the stand-in answered 200" in screen
    assert os.waitstatus_to_exitcode(status) == 0, screen


def test_a_command_killed_by_a_signal_exits_as_a_shell_reports_it() -> None:
    done = subprocess.run([sys.executable, "-m", "claude_magic.testing", "run", "--", "sh", "-c", "kill -9 $$"],
                          capture_output=True, timeout=60)
    assert done.returncode == 128 + signal.SIGKILL


def test_a_command_that_does_not_exist_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "claude_magic.testing", "run", "--", "no-such-command-here"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 127
    assert done.stderr.splitlines()[-1] == "claude-magic: can't run no-such-command-here: No such file or directory"


def _read_until(terminal: int, text: str | None, timeout: float = 30) -> str:
    """What the terminal shows until ``text`` appears (None: until the session ends)."""
    screen, deadline = "", time.monotonic() + timeout
    while text is None or text not in screen:
        ready, _, _ = select.select([terminal], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the terminal showed, after {timeout} s: {screen!r}"
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the session ended
            chunk = b""
        if not chunk:
            assert text is None, f"the session ended showing: {screen!r}"
            return screen
        screen += chunk.decode(errors="replace")
    return screen
