"""A newcomer's first minute: JupyterLab's start, then page load to the first answer.

As ``make lab`` runs it without a key: the offline stand-in (streaming at its default pace),
JupyterLab on a copy of ``notebooks/``. Each run starts the server afresh and times it until it
answers; then a fresh headless Chromium (nothing cached) opens ``quickstart.ipynb``, runs its
first two cells as a user does (Shift+Enter, as soon as the notebook shows) and times, from the
page's navigation: the notebook on screen, the kernel taking its first cell, and the first
question's answer whole on screen. The answer's time is also given from the notebook on screen,
which leaves out JupyterLab loading its own page (its scripts alone keep a core busy for about
4 s here). Median of the runs.

    .venv/bin/python bench/first_answer.py [--runs N]

Needs the ``playwright`` package and Debian's ``chromium`` (as the browser tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from claude_magic.testing import StandIn

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STAND_IN_DELAY = 0.02  # the run wrapper's default, which make lab uses
ANSWER = "Answered by the claude-magic offline stand-in"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_lab(root: Path, state: Path, base_url: str) -> tuple[subprocess.Popen[bytes], str, float]:
    """JupyterLab on ``root``; returns the process, its URL with the token, and seconds to ready."""
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-offline-stand-in",
        "CLAUDE_MAGIC_HOME": str(state / "home"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
    }
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(f"{url}/lab?token={token}", timeout=1).close()
            return process, f"{url}/lab/tree/quickstart.ipynb?token={token}", time.perf_counter() - started
        except OSError:
            if process.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit("JupyterLab did not start") from None
            time.sleep(0.05)


def clear_outputs(path: Path) -> None:
    """The notebook as a newcomer first opens it: no outputs (the saved answers would be found at once)."""
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(notebook))


def run_cell(page: Any, index: int) -> None:
    """Shift+Enter on a cell, again while its prompt shows it was never sent (a kernel still
    connecting drops it, as a user pressing too early would see)."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    for _ in range(50):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        time.sleep(0.1)
        if cell.locator(".jp-InputPrompt").inner_text().strip() != "[ ]:":
            return
    raise SystemExit(f"cell {index} never ran")


def first_answer(page_url: str) -> dict[str, float]:
    """Seconds from navigation to the notebook on screen, the kernel taking a cell, and the
    first answer whole on screen."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        started = time.perf_counter()
        page.goto(page_url)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        shown = time.perf_counter() - started
        run_cell(page, 1)  # the first code cell: %load_ext
        taken = time.perf_counter() - started
        run_cell(page, 2)  # the first question
        expect(page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea")).to_contain_text(ANSWER, timeout=60_000)
        answered = time.perf_counter() - started
        browser.close()
    return {
        "page load to notebook shown": shown,
        "page load to kernel taking a cell": taken,
        "page load to first answer": answered,
        "notebook shown to first answer": answered - shown,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    with StandIn(delay=STAND_IN_DELAY) as stand_in:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                root, state = Path(folder) / "notebooks", Path(folder) / "state"
                shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns("conftest.py", "*.cfg"))
                clear_outputs(root / "quickstart.ipynb")
                process, page_url, ready = start_lab(root, state, stand_in.base_url)
                try:
                    times = {"server ready": ready, **first_answer(page_url)}
                finally:
                    process.terminate()
                    process.wait(timeout=30)
            for name, seconds in times.items():
                figures.setdefault(name, []).append(seconds)
    print(f"median of {args.runs} runs (JupyterLab started afresh for each)")
    for name, values in figures.items():
        print(f"  {name:<34} {statistics.median(values):5.2f} s   (min {min(values):.2f}, max {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
