"""Parsing the magic's line: options first, the question verbatim after them."""

from __future__ import annotations

import pytest

from claude_magic.magics import ClaudeMagics
from claude_magic.magics.options import keep_question_marks, split_options

PARSER = ClaudeMagics.claude.parser


@pytest.mark.parametrize(
    ("line", "options", "question"),
    [
        ("What's a p-value?", [], "What's a p-value?"),
        ("-m claude-haiku-5-5 What's up", ["-m", "claude-haiku-5-5"], "What's up"),
        ("-s 'Be terse.' --effort low Why?", ["-s", "Be terse.", "--effort", "low"], "Why?"),
        ('--system="be brief" -o out hi', ["--system=be brief", "-o", "out"], "hi"),
        ("-s Don't stop", ["-s", "Don't"], "stop"),
        ("-mclaude-x hi", ["-mclaude-x"], "hi"),
        ("--dry-run --new -- -m is a flag", ["--dry-run", "--new"], "-m is a flag"),
        ("-t 0.5 -2 is negative", ["-t", "0.5"], "-2 is negative"),
        ("--no-history", ["--no-history"], ""),
        ("", [], ""),
    ],
)
def test_split_options(line: str, options: list[str], question: str) -> None:
    assert split_options(line, PARSER) == (options, question)


def test_options_parse_with_the_declared_arguments() -> None:
    args = PARSER.parse_args(["-m", "m", "--max-tokens", "10", "-t", "0.2", "--effort", "high", "-o", "x", "--dry-run"])
    assert (args.model, args.max_tokens, args.temperature, args.effort, args.output, args.dry_run) == ("m", 10, 0.2, "high", "x", True)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["%claude What is a p-value?\n"], ["get_ipython().run_line_magic('claude', 'What is a p-value?')\n"]),
        (["    %claude Why {x}? \n"], ["    get_ipython().run_line_magic('claude', 'Why {x}?')\n"]),
        (["%claude?\n"], ["%claude?\n"]),
        (["%claude no question mark\n"], ["%claude no question mark\n"]),
        (["%%claude\n", "%claude stays?\n"], ["%%claude\n", "%claude stays?\n"]),
        (["x = 1\n", "%claude It's {x}?"], ["x = 1\n", "get_ipython().run_line_magic('claude', \"It's {x}?\")\n"]),
    ],
)
def test_a_question_mark_at_the_end_stays_in_the_question(lines: list[str], expected: list[str]) -> None:
    assert keep_question_marks(lines) == expected


def test_loading_the_extension_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'claude_magic')\n"
        "heavy = [m for m in ('httpx', 'pydantic', 'pandas', 'matplotlib', 'PIL', 'ipywidgets', 'markdown_it', 'anthropic') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_each_setting_says_where_its_value_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("CLAUDE_MAGIC_LIVE_UPDATES", raising=False)
    config = Config({"ClaudeMagics": {"model": "claude-haiku-5-5"}, "HistoryManager": {"hist_file": ":memory:"}})
    magics = ClaudeMagics(InteractiveShell(config=config))
    try:
        magics.max_tokens = 1000
        sources = {name: magics.source_of(name) for name in ("model", "max_tokens", "base_url", "live_updates", "effort")}
    finally:
        magics.close()
    assert sources == {
        "model": "config file",
        "max_tokens": "%config",
        "base_url": "environment (ANTHROPIC_BASE_URL)",
        "live_updates": "default",
        "effort": "default",
    }
