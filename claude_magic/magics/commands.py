"""``%claude COMMAND``: the commands, registered by name. Adding one is one function here,
decorated with :func:`command`; ``%%claude?`` lists it from the registry, and its first word
becomes reserved (``%claude -- WORD …`` still asks a question starting with it).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..api.errors import ClaudeError
from ..ui.wording import ClaudeMagicError, explain, note, warn

if TYPE_CHECKING:
    from .settings import ClaudeSettings

Run = Callable[..., None]


@dataclass(frozen=True)
class Command:
    name: str
    run: Run
    summary: str
    argument: str | None = None
    """The one argument it takes, as help names it (None: none)."""
    flags: tuple[str, ...] = field(default_factory=tuple)
    """Flags it may take instead."""
    claims: Callable[[str], bool] | None = None
    """Whether ``%claude NAME REST`` is this command (None: always; otherwise, for a common
    word, anything else after it is a question: ``%claude why is the sky blue?``)."""

    @property
    def usage(self) -> str:
        extra = self.argument or " ".join(f"[{flag}]" for flag in self.flags)
        return f"%claude {self.name} {extra}".rstrip()

    def words(self, rest: str, line: str) -> list[str]:
        """The arguments of ``%claude NAME REST``, checked; a wrong count is most likely a question."""
        try:
            words = shlex.split(rest)
        except ValueError:  # an apostrophe: a question, surely
            words = rest.split()
        if self.argument is not None and (len(words) == 1 or (self.claims is not None and not words)):
            return words
        if self.argument is None and all(word in self.flags for word in words):
            return words
        needs = f"takes one {self.argument}" if self.argument else f"takes only {', '.join(self.flags)}" if self.flags else "takes no arguments"
        raise UsageError(f"%claude {self.name} {needs}; to ask a question that starts with {self.name!r}, write %claude -- {line.strip()}")


COMMANDS: dict[str, Command] = {}


def command(
    name: str, summary: str, *, argument: str | None = None, flags: tuple[str, ...] = (), claims: Callable[[str], bool] | None = None
) -> Callable[[Run], Run]:
    """Register ``run(magics, *words)`` as ``%claude NAME``."""

    def register(run: Run) -> Run:
        COMMANDS[name] = Command(name, run, summary, argument, flags, claims)
        return run

    return register


def is_command(line: str) -> bool:
    words = line.split(maxsplit=1)
    if not words or words[0] not in COMMANDS:
        return False
    claims = COMMANDS[words[0]].claims
    return claims is None or claims(words[1] if len(words) > 1 else "")


def run_command(magics: ClaudeSettings, line: str) -> None:
    """Run ``%claude NAME …``; the API's failures are one line."""
    name, _, rest = line.strip().partition(" ")
    found = COMMANDS[name]
    words = found.words(rest, line)
    try:
        found.run(magics, *words)
    except ClaudeError as error:
        raise ClaudeMagicError(explain(error, magics.client_settings())) from None


def commands_help() -> str:
    """The commands, one a line, for ``%%claude?``."""
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"  {c.usage:<{width}}  {c.summary}" for c in COMMANDS.values()]
    return "Commands (the line's first word):\n" + "\n".join(lines)


# --- the commands -------------------------------------------------------------------------------


@command("config", "every setting: its value and where it comes from (default, config file, environment, %config)")
def show_config(magics: ClaudeSettings) -> None:
    from ..ui.render import literal_markdown, show_text

    rows = [(name, _setting_value(magics, name), magics.source_of(name)) for name in magics.configurable()]
    rows = [_with_token_source(magics, row) if row[0] == "api_key" else row for row in rows]
    table = "\n".join(f"| `{name}` | {literal_markdown(value)} | {source} |" for name, value, source in rows)
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    plain = "\n".join(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {source}".rstrip() for name, value, source in rows)
    show_text(
        {
            "text/markdown": f"| setting | value | from |\n|---|---|---|\n{table}\n\nChange with `%config ClaudeMagics.<setting> = ...`",
            "text/plain": plain,
        }
    )


_UNSET = {
    "temperature": "(not sent)",
    "effort": "(the model's default)",
    "system": "(none)",
    "context_budget": "(the model's context window less max_tokens)",
}
_UNITS = {"timeout": " s", "refresh_rate": " / s", "attachment_chars": " characters", "context_budget": " tokens"}


def _setting_value(magics: ClaudeSettings, name: str) -> str:
    """A setting's value as shown: credentials masked, unset ones said in words, the base URL
    as it resolves."""
    from ..api.settings import mask_secret

    if name == "api_key":
        settings = magics.client_settings()
        if settings.key_held_by_server:
            return "(held by the Jupyter server)"
        return mask_secret(settings.credentials.api_key or settings.credentials.auth_token)
    if name == "base_url":
        return magics.client_settings().base_url
    if name == "replay" and magics.replay is None:
        return f"(on when no key and no base URL are set: {'on' if magics.replay_on() else 'off'} now)"
    if name == "mcp_servers":
        return _mcp_servers_shown(magics.mcp_servers) or "(none)"
    value = getattr(magics, name)
    if value in (None, "") and name in _UNSET:
        return _UNSET[name]
    if isinstance(value, bool):
        return "on" if value else "off"
    shown = f"{value:,}" if isinstance(value, int) else f"{value:g}" if isinstance(value, float) else str(value)
    return shown + _UNITS.get(name, "")


def _mcp_servers_shown(servers: dict[str, Any]) -> str:
    """``books: https://…, token sk-a…1234, tools search``: each server, its token masked."""
    from ..api.settings import mask_secret

    shown = []
    for name, declared in servers.items():
        token = declared.get("authorization_token")
        parts = [str(declared.get("url", "?"))]
        if token:
            parts.append(f"token {mask_secret(str(token))}")
        elif declared.get("authorization_token_env"):
            parts.append(f"token from ${declared['authorization_token_env']}")
        if declared.get("allowed_tools") is not None:
            parts.append(f"tools {', '.join(declared['allowed_tools'])}")
        shown.append(f"{name}: {', '.join(parts)}")
    return "; ".join(shown)


def _with_token_source(magics: ClaudeSettings, row: tuple[str, str, str]) -> tuple[str, str, str]:
    """The key row when a bearer token (``ANTHROPIC_AUTH_TOKEN``) is what authenticates."""
    name, value, source = row
    if source == "default" and magics.client_settings().credentials.auth_token:
        return name, value, "environment (ANTHROPIC_AUTH_TOKEN)"
    return name, value, "not set" if value == "(not set)" else source


@command("models", "the models the key can use, with their context window and output limit")
def show_models(magics: ClaudeSettings) -> None:
    from ..ui.render import literal_markdown, show_text

    models = magics.session.client(magics.client_settings()).list_models()
    rows = [(m.id, m.display_name, m.max_input_tokens, m.max_tokens) for m in models]
    table = "\n".join(f"| {_code_cell(i)} | {literal_markdown(n)} | {_tokens(c)} | {_tokens(o)} |" for i, n, c, o in rows)
    plain = "\n".join(f"{i:<28} {n:<24} {_tokens(c):>8} {_tokens(o):>8}" for i, n, c, o in rows)
    show_text(
        {
            "text/markdown": f"| model | name | context | max output |\n|---|---|---|---|\n{table}",
            "text/plain": plain,
        }
    )


def _code_cell(text: str) -> str:
    """``text`` as code in a table cell (GFM splits cells at a ``|`` even inside code)."""
    from ..ui.render import code_span

    return code_span(text).replace("|", "\\|")


def _tokens(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count // 1_000_000}M" if count >= 1_000_000 and count % 1_000_000 == 0 else f"{count // 1000}K"


@command("chat", "the chat panel under the cell (--side: in JupyterLab's side area, with sidecar)", flags=("--side",))
def chat(magics: ClaudeSettings, *flags: str) -> None:
    from ..ui.panel import open_panel

    if not magics.in_notebook:
        raise ClaudeMagicError("the chat panel needs a notebook that shows widgets (JupyterLab, Notebook 7, VS Code); in a terminal, use %claude")
    open_panel(magics.session, magics.panel_settings, magics.kernel_side(), side="--side" in flags)


@command("history", "the conversation's turns: cell, question, tokens (--all: and those re-runs set aside)", flags=("--all",))
def show_history(magics: ClaudeSettings, *flags: str) -> None:
    from ..ui.render import show_text
    from .reports import history_report

    show_text(history_report(magics.session.conversation.refresh(), set_aside="--all" in flags))


@command("restore", "bring set-aside exchange N (see history --all) back as the conversation's latest", argument="N")
def restore(magics: ClaudeSettings, number: str) -> None:
    conversation = magics.session.conversation.refresh()
    count = len(conversation.set_aside)
    if not number.isdigit() or not 1 <= int(number) <= count:
        raise UsageError(f"%claude restore N: N is a set-aside exchange (1 to {count}; %claude history --all lists them)" if count else "%claude restore: nothing is set aside")
    from .reports import preview

    back = conversation.restore(int(number))
    note(f"set-aside exchange {number} ({preview(back)}) is the conversation's latest again")


@command("reset", "start a new conversation (the old one is archived)")
def reset(magics: ClaudeSettings) -> None:
    cleared = magics.session.conversation.refresh().clear()
    if cleared.failure:
        warn(str(cleared))
    else:
        print(cleared)


@command("export", "the conversation as Markdown or JSON, by the file's extension", argument="PATH (a .md or .json file)")
def export(magics: ClaudeSettings, path: str) -> None:
    from .export import export as write

    conversation = magics.session.conversation.refresh()
    notebook = conversation.store.notebook if conversation.store else None
    written = write(conversation, path, notebook, magics.client_settings().credentials.secrets())
    print(f"Exported {len(conversation)} turns to {written}")


@command("usage", "tokens and estimated cost: this session and the notebook (--all: every kernel of the Jupyter server)", flags=("--all",))
def show_usage(magics: ClaudeSettings, *flags: str) -> None:
    from ..ui.render import show_text
    from .reports import server_usage_report, usage_report

    if "--all" not in flags:
        show_text(usage_report(magics.session.usage, magics.session.conversation))
        return
    settings = magics.client_settings()
    if not settings.key_held_by_server:
        raise ClaudeMagicError(
            "%claude usage --all: this kernel's key is not held by a Jupyter server with claude-magic's extension, "
            "so there are no server-wide figures; %claude usage shows this session's and the notebook's"
        )
    show_text(server_usage_report(magics.session.client(settings).server_usage()))


@command(
    "why",
    "what produced the last answer (why N: turn N of history): model, settings, request hash, usage, cost",
    argument="[N]",
    claims=lambda rest: not rest.strip() or rest.strip().isdigit(),
)
def why(magics: ClaudeSettings, number: str | None = None) -> None:
    from ..core.provenance import Provenance
    from ..ui.render import show_text
    from .reports import provenance_report

    if number is None:
        provenance, which = magics.session.last_provenance, "the last answer"
        if provenance is None:
            raise UsageError("%claude why: no answer yet in this session (%claude why N shows turn N of %claude history)")
    else:
        exchanges = magics.session.conversation.refresh().exchanges
        if not 1 <= int(number) <= len(exchanges):
            raise UsageError(f"%claude why N: N is a turn of %claude history (1 to {len(exchanges)})" if exchanges else "%claude why N: the conversation has no turns yet")
        provenance, which = Provenance.from_json(exchanges[int(number) - 1].provenance), f"turn {number}"
        if provenance is None:
            raise UsageError(f"%claude why {number}: turn {number} was recorded without its provenance (a kept compared answer, or an older version)")
    show_text(provenance_report(provenance, which))


@command("keep", "add compared answer N (of the last --compare, --sweep or -n) to the conversation", argument="N (the number of a compared answer)")
def keep(magics: ClaudeSettings, number: str) -> None:
    from ..core.conversation import CellRun, Exchange

    question, columns = (magics.compared.question, magics.compared.columns) if magics.compared else ([], [])
    if not number.isdigit() or not 1 <= int(number) <= len(columns):
        raise UsageError(f"%claude keep N: N is the number of a compared answer (1 to {len(columns)})" if columns else "%claude keep: nothing was compared yet")
    column: Any = columns[int(number) - 1]
    if not column.content:
        raise UsageError(f"%claude keep {number}: that answer has no content")
    kept = Exchange(question=question, answer=column.content, cell=CellRun(), model=column.model, usage=column.usage, billed_separately=True)
    magics.session.conversation.record(kept)
    note(f"answer {number} ({column.label}) is now part of the conversation")
