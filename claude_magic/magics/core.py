"""The ``%claude`` and ``%%claude`` magics: a thin shell over :mod:`claude_magic.session`.

Options are parsed with IPython's ``magic_arguments`` (so ``%%claude?`` documents them) and
settings are traitlets (``%config ClaudeMagics.model = "..."``). User errors become one
line, never a traceback; nothing heavier than IPython itself is imported until first use.
"""

from __future__ import annotations

import html
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, default, observe, validate

from ..api.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ClaudeError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterrupted,
)
from ..api.settings import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    DEFAULT_ATTACHMENT_CHARS,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_REFRESH_RATE,
    DEFAULT_TIMEOUT,
    EFFORT_LEVELS,
    ClientSettings,
    Credentials,
    SecretStr,
    mask_secret,
)
from ..attach.notebook import NotebookContext, running_cell_number
from ..core.conversation import CellRun
from ..core.engine import AnswerCutOff
from ..core.session import AskOptions, ClaudeSession

if TYPE_CHECKING:
    from ..attach.registry import Attachment
    from ..core.session import Answer
    from ..core.tools import Tool, ToolRun
    from ..ui.render import Renderer

COMMANDS = ("config", "models", "chat", "history", "reset", "export", "usage", "keep")
"""Words that make ``%claude`` a command rather than a question (``%claude -- config …`` asks)."""


class ClaudeMagicError(Exception):
    """A user-facing failure: shown as its one line, with no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mclaude:\x1b[0m {self}"]


@magics_class
class ClaudeMagics(Magics):
    """Ask Claude from a notebook cell."""

    model = Unicode(DEFAULT_MODEL, help="Model used when -m is not given.").tag(config=True)
    max_tokens = Int(DEFAULT_MAX_TOKENS, help="Most tokens an answer may use (thinking included).").tag(config=True)
    temperature = Float(
        None,
        allow_none=True,
        help="Sampling temperature; unset sends none. Current models accept only the default.",
    ).tag(config=True)
    effort = Enum(EFFORT_LEVELS, None, allow_none=True, help="output_config.effort; unset leaves the model's default.").tag(
        config=True
    )
    system = Unicode("", help="System prompt sent with every question (empty: none).").tag(config=True)
    api_key = Unicode(None, allow_none=True, help="API key; defaults to $ANTHROPIC_API_KEY.").tag(config=True)
    base_url = Unicode(None, allow_none=True, help=f"API base URL; defaults to $ANTHROPIC_BASE_URL, then {DEFAULT_BASE_URL}.").tag(
        config=True
    )
    api_version = Enum(API_VERSIONS, DEFAULT_API_VERSION, help="The anthropic-version header.").tag(config=True)
    max_retries = Int(DEFAULT_MAX_RETRIES, help="Retries on connection errors, 408, 409, 429 and 5xx.").tag(config=True)
    timeout = Float(DEFAULT_TIMEOUT, help="Seconds to wait for the API (connect: 5 s).").tag(config=True)
    refresh_rate = Float(DEFAULT_REFRESH_RATE, help="Most redraws a second while an answer streams.").tag(config=True)
    live_updates = Bool(
        help="Update the answer in place as it streams; off: show it once, complete (for nbval and "
        "other tools that keep only the first version of an output). Default from $CLAUDE_MAGIC_LIVE_UPDATES, else on."
    ).tag(config=True)
    max_tool_rounds = Int(8, help="--tools: most rounds of tool calls before the answer stops.").tag(config=True)
    cache = Bool(
        False, help="Answer an identical earlier request (same model, settings, system, history and question) from the answer cache."
    ).tag(config=True)
    code_cells = Enum(
        ("joined", "each"), "joined", help="--code: the answer's Python blocks joined in one new cell, or one cell each."
    ).tag(config=True)
    attachment_chars = Int(
        DEFAULT_ATTACHMENT_CHARS, help="Characters one attached object's text may take (DataFrame summaries, strings, …)."
    ).tag(config=True)
    prompt_caching = Bool(
        True, help="Mark the stable prefix (system prompt, history up to the previous turn) for prompt caching."
    ).tag(config=True)
    context_budget = Int(
        None,
        allow_none=True,
        help="Most input tokens a question may send; older turns (their images first) are left out "
        "to fit. Unset: the model's context window less max_tokens.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.session = ClaudeSession(locate=self._notebook_path)
        self._apply_request_policy()
        self._cell = CellRun()
        self._runs = 0
        self._compared: tuple[list[dict[str, Any]], list[Any]] | None = None
        """The last --compare / --sweep / --samples: its question and its columns, for %claude keep."""
        self.notebook = NotebookContext(is_own_error=lambda error: isinstance(error, (ClaudeMagicError, UsageError)))
        if shell is not None:
            shell.events.register("pre_run_cell", self._note_cell)
            shell.input_transformers_cleanup.append(keep_question_marks)
            self.notebook.install(shell)

    def close(self) -> None:
        """Unhook from the shell and close the HTTP client."""
        if self.shell is not None:
            if self._note_cell in self.shell.events.callbacks["pre_run_cell"]:
                self.shell.events.unregister("pre_run_cell", self._note_cell)
            if keep_question_marks in self.shell.input_transformers_cleanup:
                self.shell.input_transformers_cleanup.remove(keep_question_marks)
        self.notebook.uninstall()
        self.session.close()

    @default("live_updates")
    def _live_updates_from_env(self) -> bool:
        return os.environ.get("CLAUDE_MAGIC_LIVE_UPDATES", "1").strip().lower() not in ("0", "false", "no", "off")

    @validate("api_key")
    def _mask_api_key(self, proposal: Any) -> SecretStr | None:
        return SecretStr(proposal["value"]) if proposal["value"] else None

    @observe("base_url", "api_key", "api_version", "max_retries", "timeout")
    def _settings_changed(self, change: Any) -> None:
        self.session.close()

    @validate("max_tokens", "max_tool_rounds")
    def _at_least_one(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1, not {proposal['value']}")
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("model")
    def _named_model(self, proposal: Any) -> str:
        if not proposal["value"].strip():
            raise TraitError("model can't be empty: name a model (%claude models lists them)")
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("context_budget")
    def _positive_budget(self, proposal: Any) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 1:
            raise TraitError("context_budget is a number of tokens (or None for the model's context window)")
        return proposal["value"]  # type: ignore[no-any-return]

    @observe("prompt_caching", "context_budget")
    def _request_policy_changed(self, change: Any) -> None:
        self._apply_request_policy()

    def _apply_request_policy(self) -> None:
        session = getattr(self, "session", None)  # None while traitlets applies the config in __init__
        if session is not None:
            session.prompt_caching = self.prompt_caching
            session.context_budget = self.context_budget

    def _notebook_path(self) -> str | None:
        from ..core.conversation import notebook_path

        return notebook_path(os.environ, self.shell.user_ns if self.shell is not None else {})

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None, "ClaudeMagics needs a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    def _note_cell(self, info: Any) -> None:
        """pre_run_cell: which cell is about to run (its input is stored just after this hook)."""
        self._runs += 1
        number = running_cell_number(self.shell)
        count = number + 1 if number is not None and getattr(info, "store_history", False) else None
        self._cell = CellRun(getattr(info, "cell_id", None), count, self._runs)

    # --- the magic ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="Model for this question (default: ClaudeMagics.model).")
    @argument("--max-tokens", type=int, help="Most tokens the answer may use.")
    @argument("-t", "--temperature", type=float, help="Sampling temperature, sent only when given.")
    @argument("--effort", choices=EFFORT_LEVELS, help="How hard the model works (output_config.effort).")
    @argument("-s", "--system", help="System prompt for this question.")
    @argument("-o", "--output", metavar="NAME", help="Also store the answer's text in the variable NAME.")
    @argument("--dry-run", action="store_true", help="Show the exact request body and a local estimate of its size; send nothing.")
    @argument("--count", action="store_true", help="As --dry-run, with the input tokens counted by the server (count_tokens is the one request made).")
    @argument("--new", action="store_true", help="Start a fresh conversation first.")
    @argument("--no-history", action="store_true", help="A one-off: neither send nor record the conversation.")
    @argument(
        "-a",
        "--attach",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="Attach variables: DataFrames and Series as summaries, images (figures, PIL, arrays, bytes, "
        "image files) for vision, anything else as text. One-liners: -a df,fig or -a df -a fig.",
    )
    @argument("--fig", nargs="?", type=int, const=-1, metavar="N", help="Attach the last plot an earlier cell displayed, or those cell [N] displayed.")
    @argument("--recent", type=int, metavar="N", help="Attach the source (and short output) of the last N cells.")
    @argument("--error", action="store_true", help="Attach the last exception, with its traceback.")
    @argument("--cached", action="store_true", help="Answer from the answer cache when this exact request was answered before.")
    @argument("--fresh", action="store_true", help="Ask even if the answer is cached (and cache the new one).")
    @argument("--code", action="store_true", help="Put the answer's Python code into new cells below (never run).")
    @argument("--compare", metavar="MODELS", help="Ask each of these comma-separated models at once; answers side by side.")
    @argument("--sweep", metavar="SETTING=V1,V2", help="Ask once per value of a setting (model, effort, max_tokens, temperature, or system=LIST_VARIABLE).")
    @argument("-n", "--samples", type=int, metavar="N", help="Draw N answers to the question at once.")
    @argument("--tools", metavar="F,G", help="Let Claude call these notebook functions (schemas from their signatures and docstrings); each call is shown.")
    @argument(
        "--think",
        nargs="?",
        type=int,
        const=0,
        metavar="N",
        help="Let the model think first, shown collapsed above the answer: adaptive thinking (current models, "
        "steered by --effort), or with a budget of N tokens where the model takes one.",
    )
    @argument("-p", "--template", metavar="NAME", help="Ask the prompt template held in the variable NAME; key=value pairs follow it and fill its {placeholders}.")
    @argument(
        "question",
        nargs="*",
        help="the question: the rest of the line for %%claude, the cell for %%%%claude. {name} inserts a "
        "variable ({df.shape}, {items[0]}, {In[3]} too), {{name}} a literal {name}. "
        f"Commands: %%claude {' | '.join(COMMANDS)}; to ask a question starting with one of "
        "those words, put -- before it.",
    )
    @no_var_expand  # {name} is ours to fill (and {{name}} a literal); IPython's $x and {x} are not
    @line_cell_magic
    def claude(self, line: str, cell: str | None = None) -> None:
        """Ask Claude; the answer streams into the cell as Markdown.

        A following question continues the same conversation; re-running a cell replaces
        its earlier exchange. Examples::

            %claude What is a p-value?

            %%claude -m claude-haiku-5-5 -o answer
            Explain the difference between {df1_name} and {df2_name}.
        """
        if cell is None and line.split(maxsplit=1)[:1] and line.split(maxsplit=1)[0] in COMMANDS:
            return self._command(line)
        if cell is None:
            tokens, prompt = split_options(line, self.claude.parser)
            args = self.claude.parser.parse_args(tokens)
        else:
            args, prompt = self.claude.parser.parse_args(split_cell_options(line)), cell
            if args.question:
                raise UsageError(f"unexpected text on the %%claude line: {' '.join(args.question)!r}; the question goes in the cell")
        try:
            self._ask(args, prompt)
        except ClaudeError as error:  # attachments that can't be made: nothing was sent
            raise ClaudeMagicError(str(error)) from None

    def _ask(self, args: Any, prompt: str) -> None:
        from ..attach.interpolate import interpolate

        check_option_values(args)
        namespace = self._namespace
        if args.template:
            prompt, namespace = self._template(args.template, prompt)
        interpolated = interpolate(prompt, namespace)
        for reference in interpolated.unresolved:
            print(f"claude: {reference} names nothing; sent as written", file=sys.stderr)
        text = interpolated.text.strip()
        if not text:
            raise UsageError("nothing to ask: write a question after %claude, or in the cell under %%claude")
        attachments = self._attachments(args)
        if args.new and (cleared := self.session.conversation.clear()).failure:
            print(f"claude: {cleared}", file=sys.stderr)
        question = [*self.session.attachment_blocks(attachments), {"type": "text", "text": text}]
        options = self._options(args)
        if args.dry_run or args.count:
            return self._show_request(question, options, attachments, count=args.count)
        if args.compare or args.sweep or args.samples:
            return self._compare(args, question, options)
        answer = self._send(question, options, store_as=args.output)
        if args.code:
            self._offer_code(answer.text)

    def _thinking(self, args: Any) -> dict[str, Any] | None:
        """--think in the form the model takes, from its capabilities in /v1/models."""
        if args.think is None:
            return None
        from ..core.session import thinking_request

        model = args.model if args.model is not None else self.model
        max_tokens = args.max_tokens if args.max_tokens is not None else self.max_tokens
        return thinking_request(model, self.session.model_info(model, self.client_settings()), args.think, max_tokens)

    def _show_tool_run(self, run: ToolRun) -> None:
        """A tool call and its result, collapsed, shown as it happens. The name and the arguments
        come from the model: the summary is one escaped line (a blank line would end the HTML
        block and let Markdown in), the output a fenced block no line of it can close."""
        from ..ui.render import fenced, show_text

        arguments = ", ".join(f"{k}={v!r}" for k, v in run.arguments.items())
        outcome = "error" if run.is_error else "result"
        summary = " ".join(f"🔧 {run.name}({arguments}) → {outcome}".splitlines())
        show_text({"text/markdown": f"<details><summary>{html.escape(summary)}</summary>\n\n{fenced(run.output)}\n\n</details>", "text/plain": f"{summary}: {run.output}"})

    def _tools(self, names: str | None) -> tuple[Tool, ...]:
        from ..core.tools import ToolError, tool_from

        tools = []
        listed = [n.strip() for n in (names or "").split(",") if n.strip()]
        if repeated := sorted({n for n in listed if listed.count(n) > 1}):
            raise ToolError(f"--tools names {', '.join(repeated)} more than once; each tool is offered once")
        for name in listed:
            if name not in self._namespace:
                raise ToolError(f"--tools {name}: no such function in the notebook")
            tools.append(tool_from(name, self._namespace[name]))
        return tuple(tools)

    def _compare(self, args: Any, question: list[dict[str, Any]], options: AskOptions) -> None:
        """Several answers side by side; none joins the conversation until kept."""
        from IPython.display import display

        from . import compare

        columns = compare.variants(options, args.compare, args.sweep, args.samples, self._namespace)
        handle = display({"text/plain": "…"}, raw=True, display_id=True)
        drawn: list[int] = []

        def draw(current: list[compare.Column]) -> None:
            state = [len(c.pieces) + (c.total is not None) + (c.error is not None) for c in current]
            if state != drawn:
                drawn[:] = state
                handle.update(compare.bundle(current), raw=True)

        compare.run(self.session, question, columns, self.client_settings(), self._cell, draw)
        self._compared = (question, columns)
        print(f"claude: {len(columns)} answers, none added to the conversation; keep one with %claude keep N", file=sys.stderr)

    def _keep(self, number: str) -> None:
        from ..core.conversation import CellRun as Cell
        from ..core.conversation import Exchange

        question, columns = self._compared or ([], [])
        if not number.isdigit() or not 1 <= int(number) <= len(columns):
            raise UsageError(f"%claude keep N: N is the number of a compared answer (1 to {len(columns)})" if columns else "%claude keep: nothing was compared yet")
        column = columns[int(number) - 1]
        if not column.content:
            raise UsageError(f"%claude keep {number}: that answer has no content")
        kept = Exchange(question=question, answer=column.content, cell=Cell(), model=column.model, usage=column.usage, billed_separately=True)
        self.session.conversation.record(kept)
        print(f"claude: answer {number} ({column.label}) is now part of the conversation", file=sys.stderr)

    def _template(self, name: str, assignments: str) -> tuple[str, dict[str, Any]]:
        """The template a variable holds, and the namespace its ``{placeholders}`` are filled
        from: the ``key=value`` pairs given, then the notebook's variables."""
        template = self._namespace.get(name)
        if not isinstance(template, str):
            raise UsageError(f"-p {name}: no string variable {name!r} holds a prompt template")
        values: dict[str, Any] = {}
        for pair in shlex.split(assignments):
            key, equals, value = pair.partition("=")
            if not equals or not key.isidentifier():
                raise UsageError(f"-p {name}: expected key=value pairs after the template name, got {pair!r}")
            values[key] = value
        return template, {**self._namespace, **values}

    def _offer_code(self, text: str) -> None:
        from .code_cells import cells_for, put_in_next_cells, python_blocks

        cells = cells_for(python_blocks(text), one_cell_each=self.code_cells == "each")
        in_vscode = "__vsc_ipynb_file__" in self._namespace or "VSCODE_PID" in os.environ
        print(put_in_next_cells(self.shell, cells, in_vscode), file=sys.stderr)

    def _attachments(self, args: Any) -> list[Attachment]:
        """What -a, --fig, --recent and --error attach, in that order; any failure sends nothing."""
        from ..attach.interpolate import Unresolved, lookup
        from ..attach.registry import AttachmentError, check_image_count

        attachments = []
        for name in [n for value in args.attach or [] for n in value.split(",") if n]:
            try:
                obj = lookup(name, self._namespace)
            except Unresolved as why:
                raise AttachmentError(f"-a {name}: {why}") from None
            attachments.append(self.attach(f"`{name}`", obj))
        if args.fig is not None:
            attachments += self.notebook.figures(None if args.fig == -1 else args.fig)
        if args.recent:
            attachments.append(self.notebook.recent_cells(args.recent, self.attachment_chars))
        if args.error:
            attachments.append(self.notebook.error(self.attachment_chars))
        check_image_count(attachments)
        return attachments

    def attach(self, label: str, obj: Any) -> Attachment:
        """``obj`` as an attachment, as ``-a`` makes it (the size budget, ``text/llm+plain`` formatters)."""
        from ..attach.registry import attach

        formatters = self.shell.display_formatter.formatters if self.shell and self.shell.display_formatter else {}
        return attach(label, obj, self.attachment_chars, formatters.get("text/llm+plain"))

    def _options(self, args: Any) -> AskOptions:
        return AskOptions(
            model=args.model if args.model is not None else self.model,
            max_tokens=args.max_tokens if args.max_tokens is not None else self.max_tokens,
            system=args.system if args.system is not None else self.system,
            temperature=args.temperature if args.temperature is not None else self.temperature,
            effort=args.effort or self.effort,  # type: ignore[arg-type]  # both limited to EFFORT_LEVELS
            use_history=not args.no_history,
            thinking=self._thinking(args),
            cached=args.cached or args.fresh or self.cache,
            tools=self._tools(args.tools),
            max_tool_rounds=self.max_tool_rounds,
            fresh=args.fresh,
        )

    def _send(self, question: list[dict[str, Any]], options: AskOptions, store_as: str | None) -> Answer:
        """Ask, then show the footer and store the text in ``store_as``, even for a partial answer."""
        from ..ui.render import show_footer

        settings = self.client_settings()
        try:
            answer = self.session.ask(question, options, settings, self._open_renderer, self._cell, self._show_tool_run)
        except AnswerCutOff as cut:
            show_footer(footer(cut.answer), in_notebook=self._in_notebook)
            if store_as:
                self._namespace[store_as] = cut.answer.text
            raise ClaudeMagicError(explain_cut_off(cut.cause)) from None
        except KeyboardInterrupt:
            raise ClaudeMagicError("interrupted before the answer started; nothing was recorded") from None
        except ClaudeError as error:
            raise ClaudeMagicError(explain(error, settings)) from None
        show_footer(footer(answer), in_notebook=self._in_notebook)
        if answer.calls_not_run:
            print(f"claude: {calls_not_run_note(answer.calls_not_run, options)}", file=sys.stderr)
        if store_as:
            self._namespace[store_as] = answer.text
        return answer

    @property
    def _in_notebook(self) -> bool:
        return getattr(self.shell, "kernel", None) is not None

    def _open_renderer(self) -> Renderer:
        from ..ui.render import FinalAnswer, NotebookAnswer, TerminalAnswer

        if not self._in_notebook:
            return TerminalAnswer()
        return NotebookAnswer(refresh_rate=self.refresh_rate) if self.live_updates else FinalAnswer()

    def _show_request(self, question: list[dict[str, Any]], options: AskOptions, attachments: list[Attachment], count: bool) -> None:
        from . import dry_run

        request = self.session.build_request(question, options, self._cell)
        dry_run.show(self.session.client(self.client_settings()), request, attachments, count=count)

    # --- settings and commands ---------------------------------------------------------------

    def client_settings(self) -> ClientSettings:
        """Effective settings: %config first, then the SDK's environment variables, then defaults."""
        env = Credentials.from_env()
        credentials = Credentials(api_key=str(self.api_key)) if self.api_key else env
        return ClientSettings(
            credentials=credentials,
            base_url=self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL,
            api_version=self.api_version,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    def _command(self, line: str) -> None:
        name, _, rest = line.strip().partition(" ")
        if name == "chat":
            return self._chat_command(rest)
        handlers: dict[str, Callable[..., None]] = {
            "config": self._show_config,
            "models": self._show_models,
            "history": self._show_history,
            "reset": self._reset,
            "export": self._export,
            "usage": self._show_usage,
            "keep": self._keep,
        }
        arguments = command_arguments(name, rest, line)
        try:
            handlers[name](*arguments)
        except ClaudeError as error:
            raise ClaudeMagicError(explain(error, self.client_settings())) from None

    def _chat_command(self, rest: str) -> None:
        if rest.split() not in ([], ["--side"]):
            raise UsageError(f"%claude chat takes only --side; to ask a question that starts with 'chat', write %claude -- chat {rest.strip()}")
        self.chat(side=bool(rest.split()))

    def chat(self, side: bool = False) -> None:
        """Show the chat panel under the cell (``side``: in JupyterLab's side area, with sidecar)."""
        from ..ui.panel import open_panel

        if not self._in_notebook:
            raise ClaudeMagicError("the chat panel needs a notebook that shows widgets (JupyterLab, Notebook 7, VS Code); in a terminal, use %claude")
        open_panel(self, side=side)

    def _show_config(self) -> None:
        from ..ui.render import literal_markdown, show_text

        settings = self.client_settings()
        key_source = "%config" if self.api_key else "ANTHROPIC_API_KEY" if settings.credentials.api_key else (
            "ANTHROPIC_AUTH_TOKEN" if settings.credentials.auth_token else "not set"
        )
        rows = [
            ("model", self.model),
            ("max_tokens", self.max_tokens),
            ("temperature", self.temperature if self.temperature is not None else "(not sent)"),
            ("effort", self.effort or "(model default)"),
            ("system", self.system or "(none)"),
            ("credentials", f"{mask_secret(settings.credentials.api_key or settings.credentials.auth_token)} ({key_source})"),
            ("base_url", settings.base_url),
            ("api_version", settings.api_version),
            ("max_retries", settings.max_retries),
            ("timeout", f"{settings.timeout:g} s"),
            ("refresh_rate", f"{self.refresh_rate:g} / s"),
            ("prompt_caching", "on" if self.prompt_caching else "off"),
            ("context_budget", f"{self.context_budget:,} tokens" if self.context_budget else "(the model's context window)"),
        ]
        table = "\n".join(f"| `{name}` | {literal_markdown(str(value))} |" for name, value in rows)
        plain = "\n".join(f"{name:<13} {value}" for name, value in rows)
        show_text(
            {
                "text/markdown": f"| setting | value |\n|---|---|\n{table}\n\nChange with `%config ClaudeMagics.<setting> = ...`",
                "text/plain": plain,
            }
        )

    def _show_models(self) -> None:
        from ..ui.render import literal_markdown, show_text

        models = self.session.client(self.client_settings()).list_models()
        rows = [(m.id, m.display_name, m.max_input_tokens, m.max_tokens) for m in models]
        table = "\n".join(f"| {_code_cell(i)} | {literal_markdown(n)} | {_tokens(c)} | {_tokens(o)} |" for i, n, c, o in rows)
        plain = "\n".join(f"{i:<28} {n:<24} {_tokens(c):>8} {_tokens(o):>8}" for i, n, c, o in rows)
        show_text(
            {
                "text/markdown": f"| model | name | context | max output |\n|---|---|---|---|\n{table}",
                "text/plain": plain,
            }
        )

    # --- the conversation: history, reset, export, usage ---------------------------------------

    def _show_history(self) -> None:
        from ..ui.render import show_text
        from .reports import history_report

        show_text(history_report(self.session.conversation.refresh()))

    def _reset(self) -> None:
        cleared = self.session.conversation.refresh().clear()
        if cleared.failure:
            print(f"claude: {cleared}", file=sys.stderr)
        else:
            print(cleared)

    def _export(self, path: str) -> None:
        from .export import export

        conversation = self.session.conversation.refresh()
        notebook = conversation.store.notebook if conversation.store else None
        written = export(conversation, path, notebook, self.client_settings().credentials.secrets())
        print(f"Exported {len(conversation)} turns to {written}")

    def _show_usage(self) -> None:
        from ..ui.render import show_text
        from .reports import usage_report

        show_text(usage_report(self.session.usage, self.session.conversation))


_AT_LEAST_ONE = {"max_tokens": "--max-tokens", "samples": "--samples", "recent": "--recent"}


def check_option_values(args: Any) -> None:
    """Refuse values that would otherwise be quietly replaced by a default or ignored."""
    if args.model is not None and not args.model.strip():
        raise UsageError("-m: the model name is empty; leave -m out for the default (ClaudeMagics.model)")
    for name, option in _AT_LEAST_ONE.items():
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{option} {value}: give a number of at least 1")


COMMAND_ARGUMENTS = {"export": "PATH (a .md or .json file)", "keep": "N (the number of a compared answer)"}
"""The commands that take an argument, and what it is; the others take none."""


def command_arguments(name: str, rest: str, line: str) -> list[str]:
    """The arguments of ``%claude NAME REST``, checked; a wrong count is most likely a question."""
    try:
        words = shlex.split(rest)
    except ValueError:  # an apostrophe: a question, surely
        words = rest.split()
    wanted = COMMAND_ARGUMENTS.get(name)
    if len(words) == (1 if wanted else 0):
        return words
    needs = f"takes one {wanted}" if wanted else "takes no arguments"
    raise UsageError(f"%claude {name} {needs}; to ask a question that starts with {name!r}, write %claude -- {line.strip()}")


def _code_cell(text: str) -> str:
    """``text`` as code in a table cell (GFM splits cells at a ``|`` even inside code)."""
    from ..ui.render import code_span

    return code_span(text).replace("|", "\\|")


def _tokens(count: int | None) -> str:
    if count is None:
        return "?"
    return f"{count // 1_000_000}M" if count >= 1_000_000 and count % 1_000_000 == 0 else f"{count // 1000}K"


# --- parsing ------------------------------------------------------------------------------------

_QUESTION_LINE = re.compile(r"^(?P<indent>[ \t]*)%claude[ \t]+(?P<rest>\S.*?\?)[ \t]*$")


def keep_question_marks(lines: list[str]) -> list[str]:
    """Input cleanup: ``%claude What is a p-value?`` is a question, not a help request.

    IPython reads a line ending in ``?`` as "show help for the name before it", before any
    magic sees it; this turns such ``%claude`` lines into the magic call they mean. ``%claude?``
    (help on the magic) and the bodies of ``%%`` cells are left alone.
    """
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines
    return [_question_call(line) for line in lines]


def _question_call(line: str) -> str:
    match = _QUESTION_LINE.match(line.rstrip("\n"))
    if match is None:
        return line
    return f"{match['indent']}get_ipython().run_line_magic('claude', {match['rest']!r})\n"


def split_cell_options(line: str) -> list[str]:
    """The options on a ``%%claude`` line, split as a shell would: quotes group and are removed."""
    try:
        return shlex.split(line)
    except ValueError:
        raise UsageError(f"unbalanced quote on the %%claude line: {line.strip()!r}; quote values with spaces: -s \"Don't stop\"") from None


_TOKEN = re.compile(r"""(?:[^\s"']+|"[^"]*"|'[^']*'|["'])+""")


def split_options(line: str, parser: Any) -> tuple[list[str], str]:
    """Split a line magic's line into its leading options and the question, kept verbatim.

    Shell-style splitting of the whole line would choke on apostrophes ("What's …"), so only
    the leading options are tokenised; ``--`` ends them explicitly.
    """
    tokens: list[str] = []
    position = 0
    wants: str | None = None
    while match := _TOKEN.search(line, position):
        token = match.group(0)
        if wants == "any" or (wants == "number" and _is_number(token)):
            tokens.append(_unquote(token))
            wants = None
        elif token == "--":
            position = match.end()
            break
        elif not token.startswith("-") or _is_number(token):
            position = match.start()
            break
        else:
            tokens.append(_unquote(token))
            wants = _value_wanted(parser, token)
        position = match.end()
    else:
        position = len(line)
    return tokens, line[position:].strip()


def _value_wanted(parser: Any, token: str) -> str | None:
    """What may follow an option token as its value: ``any`` token, a ``number`` only (an
    optional numeric value, as ``--fig [N]``), or nothing (a flag, or ``-mVALUE`` / ``--x=v``)."""
    if "=" in token:
        return None
    action = parser._option_string_actions.get(token)  # None for "-mVALUE": value attached
    if action is None or action.nargs == 0:
        return None
    return "number" if action.nargs == "?" else "any"


def _unquote(token: str) -> str:
    """Shell-style quote removal within one token; a stray quote is kept as written."""
    try:
        return "".join(shlex.split(token))
    except ValueError:
        return token


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# --- explaining failures ------------------------------------------------------------------------


def footer(answer: Answer) -> str:
    from ..core.budget import left_out_note
    from ..core.pricing import TokenUsage, cost, format_cost

    usage = answer.usage
    tokens = TokenUsage.from_api(usage)
    parts = [answer.model, f"{tokens.input:,} in · {tokens.output:,} out tokens"]
    if answer.cached_at is not None:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.cached_at))
        return " · ".join([*parts, f"from the answer cache (received {saved}; --fresh asks again), no cost"])
    if tokens.cache_read or tokens.written:
        parts.append(f"cache: {tokens.cache_read:,} read, {tokens.written:,} written")
    spent = cost(answer.model, usage) if usage else None
    parts.append(f"≈ {format_cost(spent)}" if spent is not None else "cost unknown")
    if answer.time_to_first_token is not None:
        parts.append(f"first token {answer.time_to_first_token:.2f} s")
    parts.append(f"total {answer.total_time:.2f} s")
    if not answer.complete:
        parts.append("incomplete")
    elif answer.stop_reason == "max_tokens":
        parts.append("stopped at max_tokens (raise --max-tokens)")
    elif answer.stop_reason not in (None, "end_turn", "stop_sequence"):
        parts.append(f"stop reason: {answer.stop_reason}")
    if left_out := left_out_note(answer.turns_left_out, answer.images_left_out):
        parts.append(left_out)
    return " · ".join(parts)


def explain(error: ClaudeError, settings: ClientSettings) -> str:
    """One line that says what went wrong and what to do about it."""
    if isinstance(error, AuthenticationError):
        key = mask_secret(settings.credentials.api_key or settings.credentials.auth_token)
        return f"the API rejected the key {key} (401 {error.message}); check ANTHROPIC_API_KEY{_request(error)}"
    if isinstance(error, PermissionDeniedError):
        return f"this key may not do that (403 {error.message}){_request(error)}"
    if isinstance(error, NotFoundError):
        return f"not found (404 {error.message}); check the model id: %claude models lists those your key can use{_request(error)}"
    if isinstance(error, (RateLimitError, OverloadedError)) and error.status_code is not None:
        what = "rate limited (429)" if isinstance(error, RateLimitError) else "the API is overloaded (529)"
        wait = f"; the API asks to wait {error.retry_after:.0f} s" if error.retry_after else "; wait a little and run the cell again"
        return f"{what} after {settings.max_retries + 1} attempts: {error.message}{wait}{_request(error)}"
    if isinstance(error, BadRequestError):
        hint = ""
        if any(name in error.message for name in ("temperature", "top_p", "top_k")):
            hint = "; current models accept only default sampling: drop -t / unset ClaudeMagics.temperature"
        elif "thinking" in error.message:
            hint = "; --think alone asks for adaptive thinking, --think N for a budget: each model takes one of them (see %claude models)"
        return f"the API refused the request (400 {error.message}){hint}{_request(error)}"
    if isinstance(error, APIError):
        return f"{error}"
    if isinstance(error, APIConnectionError):
        return f"{error}; check ANTHROPIC_BASE_URL and the network"
    return str(error)


def calls_not_run_note(calls: list[str], options: AskOptions) -> str:
    """Why the answer's last tool calls were not run, and that the conversation goes on."""
    listed = ", ".join(calls)
    if options.tools:
        why = f"stopped after {options.max_tool_rounds} tool rounds (ClaudeMagics.max_tool_rounds); {listed} was not run"
    else:
        why = f"Claude asked to call {listed}, which is not among --tools; it was not run"
    return f"{why}. The conversation goes on: ask a follow-up to let Claude continue"


def explain_cut_off(cause: BaseException) -> str:
    if isinstance(cause, KeyboardInterrupt):
        return "interrupted; the partial answer above is kept"
    if isinstance(cause, StreamInterrupted):
        return f"{cause}; the partial answer above is kept"
    return f"the answer was cut off by an error ({cause}); the partial answer above is kept"


def _request(error: APIError) -> str:
    return f" [request-id {error.request_id}]" if error.request_id else ""
