"""A home the kernel can read but not write (a shared, read-only volume; a full disk): every
answer still arrives with its footer and ``-o``, each thing that could not be written is one
line, a cached answer is still a hit, and ``%claude reset`` says what a restart will find.

The home is made read-only for the kernel alone with a read-only bind mount in a mount
namespace of its own (``unshare``), which holds for root too (chmod does not stop root, and
tests often run as root in containers). Where namespaces are not allowed, a user that is not
root gets a home without write permission instead (which can't fail a cache hit's time
update: the owner may always set it), and root skips these tests, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from kernel_harness import Kernel, stand_in_environment

from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-read-only-home-test-key-0b7d4e"
NOTEBOOK = "/work/read-only.ipynb"
BIND_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


@pytest.fixture(autouse=True)
def quiet(server: StandIn) -> None:
    server.reset()


def environment(server: StandIn, home: Path, notebook: str | None) -> dict[str, str | None]:
    return stand_in_environment(server.base_url, KEY, home, notebook)


def mount_launcher(home: Path) -> list[str] | None:
    """A launcher that runs the kernel with ``home`` bind-mounted read-only in a mount namespace
    of its own (a user namespace too, so that no privilege is needed); None where not allowed."""
    if shutil.which("unshare") is None:
        return None
    launcher = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", BIND_READ_ONLY, str(home)]
    probe = subprocess.run(
        [*launcher, "touch", str(home / ".probe")], capture_output=True, text=True, timeout=30, check=False
    )
    if "Read-only file system" in probe.stderr and not (home / ".probe").exists():
        return launcher
    (home / ".probe").unlink(missing_ok=True)
    return None


@contextmanager
def read_only_kernel(server: StandIn, home: Path, notebook: str | None = None) -> Iterator[Kernel]:
    """A kernel with the extension loaded, for which ``home`` is read-only."""
    launcher = mount_launcher(home)
    if launcher is None and os.geteuid() == 0:
        pytest.skip("no mount namespace here (unshare), and chmod can't make a home read-only for root")
    with (
        _without_write_permission(home) if launcher is None else nullcontext(),
        Kernel(environment(server, home, notebook), launcher) as k,
    ):
        assert k.run("%load_ext claude_magic").status == "ok"
        yield k


@contextmanager
def _without_write_permission(home: Path) -> Iterator[None]:
    paths = [home, *home.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        for path in paths:
            path.chmod(0o700 if path.is_dir() else 0o600)


def kernel(server: StandIn, home: Path, notebook: str | None = None) -> Kernel:
    return Kernel.with_magic(environment(server, home, notebook))


def test_the_answer_cache_on_a_read_only_home_costs_no_answer(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path) as writable:
        writable.ok("%claude --cached What is a p-value?")
    assert len(server.message_requests) == 1
    with read_only_kernel(server, tmp_path) as k:
        hit = k.ok("%claude --cached -o first What is a p-value?")
        assert len(server.message_requests) == 1, "a hit whose time can't be updated is still a hit"
        assert "from the answer cache" in hit.footer and hit.stderr == ""
        miss = k.ok("%claude --cached -o second And a confidence interval?")
        assert len(server.message_requests) == 2 and miss.error is None
        [warning] = miss.stderr.splitlines()
        assert warning.startswith("claude: this answer was not kept in the answer cache:") and str(tmp_path) in warning
        assert "out tokens" in miss.footer
        kept = k.ok("import json; print(json.dumps([first, second]))")
        assert json.loads(kept.stdout) == [server.message_requests[0].answer, server.message_requests[1].answer]


def test_reset_in_a_read_only_home_says_in_one_line_what_a_restart_will_find(server: StandIn, tmp_path: Path) -> None:
    with kernel(server, tmp_path, NOTEBOOK) as writable:
        writable.ok("%claude Before", cell_id="A")
    with read_only_kernel(server, tmp_path, NOTEBOOK) as k:
        asked = k.ok("%claude Meanwhile", cell_id="B")
        assert server.message_requests[-1].prompts() == ["Before", "Meanwhile"] and "out tokens" in asked.footer
        [unsaved] = asked.stderr.splitlines()
        assert unsaved.startswith("claude: the conversation could not be saved:")
        reset = k.ok("%claude reset")
        [said] = (reset.stdout + reset.stderr).splitlines()
        assert "could not be archived" in said and "restart" in said and "nothing to archive" not in said
        k.ok("%claude After")
        assert server.message_requests[-1].prompts() == ["After"]
    with read_only_kernel(server, tmp_path, NOTEBOOK) as restarted:  # what the line promised
        restarted.ok("%claude Later")
        assert server.message_requests[-1].prompts() == ["Before", "Later"]
