"""Running a command under the stand-in the way a shell runs it: the command gets its signals, the wrapper outlives them.

``python -m claude_magic.testing run -- jupyter lab`` must stay out of the way of the command it runs. A terminal's
Ctrl-C goes to the whole foreground process group, so the command already gets it (Jupyter then asks whether to shut
down; IPython stops the answer it is streaming): the wrapper must neither die of it, taking the stand-in away from a
command still running, nor pass it on a second time (a second SIGINT makes Jupyter stop at once, without asking). A
SIGINT or SIGTERM sent to the wrapper alone (``kill -INT PID``; make passing on a SIGTERM) reached only the wrapper, and
is passed on. The wrapper waits for the command, keeping the stand-in serving, and exits with its code.

Telling the two apart takes the signal's sender. On Linux the signals are held (blocked) in every thread, from before
the stand-in starts its own threads, which inherit the mask, and taken one at a time with ``sigwaitinfo``, whose
``si_code`` says whether the kernel sent the signal for a terminal (``SI_KERNEL``) or a process did; the command is
started by ``posix_spawn`` with those signals unblocked again, so it sees them as usual. One case is still taken
for the terminal's: a process signalling the whole group (``kill -INT -PGID``) reaches the command twice. Elsewhere
(macOS has no ``sigwaitinfo``; Windows) the sender can't be known: a SIGINT is taken as the terminal's, which the
command got too, and only SIGTERM is passed on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

PASSED_ON = {signal.SIGINT, signal.SIGTERM}
SI_KERNEL = 0x80  # Linux's si_code for a signal the kernel sent: a terminal's Ctrl-C
KNOWS_THE_SENDER = sys.platform == "linux"


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold the signals the wrapper handles, in this thread and the threads started inside, for :func:`run_command`.

    The mask is not restored on leaving: a signal held then would raise KeyboardInterrupt as the wrapper exits (with a
    traceback); the process ends with the command, and its held signals with it.
    """
    if KNOWS_THE_SENDER:
        signal.pthread_sigmask(signal.SIG_BLOCK, PASSED_ON | {signal.SIGCHLD})
    yield


def run_command(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` to its end, passing on the signals sent to the wrapper alone; return its exit code, as a shell would.

    Raises OSError when the command can't be started (not found, not executable).
    """
    if KNOWS_THE_SENDER:
        return _run_knowing_senders(cmd, env)
    return _run_without_senders(cmd, env)


def _run_knowing_senders(cmd: list[str], env: dict[str, str]) -> int:
    held = signal.sigpending() & PASSED_ON
    if held:  # interrupted while the stand-in started: the command never runs
        return 128 + min(held)
    waited = PASSED_ON | {signal.SIGCHLD}
    started_with = signal.pthread_sigmask(signal.SIG_BLOCK, ()) - waited
    # What subprocess's restore_signals does: Python ignores SIGPIPE and SIGXFSZ, the command must not.
    pid = os.posix_spawnp(cmd[0], cmd, env, setsigmask=started_with, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    while True:
        received = signal.sigwaitinfo(waited)
        if received.si_signo == signal.SIGCHLD:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return _shell_exit_code(os.waitstatus_to_exitcode(status))
        elif received.si_code != SI_KERNEL:
            os.kill(pid, received.si_signo)


def _run_without_senders(cmd: list[str], env: dict[str, str]) -> int:
    child = subprocess.Popen(cmd, env=env)
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    return _shell_exit_code(child.wait())


def _shell_exit_code(code: int) -> int:
    """A command killed by signal N exits, as a shell reports it, with 128 + N."""
    return 128 - code if code < 0 else code
