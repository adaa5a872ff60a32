"""Asking a question from a cell: the prompt and its attachments become a question, the options
become :class:`~claude_magic.core.session.AskOptions`, and the turn engine answers it into the
cell; then the footer, ``-o`` and ``--code``.

Data flows one way: cell → prompt and attachments → question → engine → renderer → display.
Every failure on the way is one line; nothing is sent before the question is whole.
"""

from __future__ import annotations

import html
import os
import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..api.errors import ClaudeError, ConfigurationError
from ..api.settings import as_effort
from ..core.session import AskOptions, thinking_request
from ..ui.wording import ClaudeMagicError, calls_not_run_note, explain, explain_cut_off, footer, note, warn
from .options import check_option_values

if TYPE_CHECKING:
    from ..api.protocol import MessageRequest
    from ..attach.registry import Attachment
    from ..core.engine import Answer, Approve, Renderer
    from ..core.provenance import Attached
    from ..core.server_tools import ServerCall
    from ..core.tools import ToolRun
    from .settings import ClaudeSettings


def ask_question(magics: ClaudeSettings, args: Any, prompt: str) -> None:
    """Ask ``prompt`` as the options in ``args`` say (or show what would be sent)."""
    from ..attach.interpolate import interpolate

    check_option_values(args)
    if args.each or args.schema or args.batch:
        return _ask_each(magics, args, prompt)
    namespace = magics.namespace
    if args.template:
        prompt, namespace = _template(magics, args.template, prompt)
    interpolated = interpolate(prompt, namespace)
    for reference in interpolated.unresolved:
        warn(f"{reference} names nothing; sent as written")
    text = interpolated.text.strip()
    if not text:
        raise UsageError("nothing to ask: write a question after %claude, or in the cell under %%claude")
    attachments = _attachments(magics, args)
    if args.new and (cleared := magics.session.conversation.clear()).failure:
        warn(str(cleared))
    question = [*magics.session.held_once([b for a in attachments for b in a.blocks()]), {"type": "text", "text": text}]
    question = magics.session.cite_documents(question, args.cite or magics.cite, magics.cell, use_history=not args.no_history)
    if args.cite and not args.web and not _holds_documents(magics, question):
        warn("--cite applies to documents (-a report.pdf) and to pages --web fetches; neither this question nor the conversation has any")
    options = ask_options(magics, args)
    if args.dry_run or args.count:
        return _show_request(magics, question, options, attachments, count=args.count)
    if args.estimate:
        return _show_estimate(magics, question, options)
    if args.compare or args.sweep or args.samples:
        return _compare(magics, args, question, options)
    answer = _send(magics, question, options, store_as=args.output, approve=_approval(magics, yes=args.yes), attachments=_named(attachments))
    if args.code:
        _offer_code(magics, answer.text)


def _holds_documents(magics: ClaudeSettings, question: list[dict[str, Any]]) -> bool:
    """Whether the question, or the history it is sent with, holds a document."""
    messages = [{"content": question}, *magics.session.conversation.messages(magics.cell)]
    return any(isinstance(m["content"], list) and any(b.get("type") == "document" for b in m["content"]) for m in messages)


def ask_options(magics: ClaudeSettings, args: Any) -> AskOptions:
    """The options of this question: what the line says, else the settings."""
    from ..core.server_tools import mcp_servers_named, web_tools
    from ..core.tools import tools_named

    model = args.model if args.model is not None else magics.model
    return AskOptions(
        model=model,
        max_tokens=args.max_tokens if args.max_tokens is not None else magics.max_tokens,
        system=args.system if args.system is not None else magics.system,
        temperature=args.temperature if args.temperature is not None else magics.temperature,
        effort=as_effort(args.effort or magics.effort),
        use_history=not args.no_history,
        thinking=_thinking(magics, args),
        cached=args.cached or args.fresh or magics.cache,
        tools=tools_named(args.tools or "", magics.namespace),
        max_tool_rounds=magics.max_tool_rounds,
        fresh=args.fresh,
        replay=magics.replay_on(),
        server_tools=web_tools(model, magics.web_max_uses, cite=args.cite or magics.cite) if args.web else (),
        mcp_servers=mcp_servers_named(args.mcp, magics.mcp_servers, os.environ) if args.mcp else (),
    )


def _thinking(magics: ClaudeSettings, args: Any) -> dict[str, Any] | None:
    """--think in the form the model takes, from its capabilities in /v1/models."""
    if args.think is None:
        return None
    model = args.model if args.model is not None else magics.model
    max_tokens = args.max_tokens if args.max_tokens is not None else magics.max_tokens
    return thinking_request(model, magics.session.model_info(model, magics.client_settings()), args.think, max_tokens)


def _template(magics: ClaudeSettings, name: str, assignments: str) -> tuple[str, dict[str, Any]]:
    """The template a variable holds, and the namespace its ``{placeholders}`` are filled
    from: the ``key=value`` pairs given, then the notebook's variables."""
    template = magics.namespace.get(name)
    if not isinstance(template, str):
        raise UsageError(f"-p {name}: no string variable {name!r} holds a prompt template")
    values: dict[str, Any] = {}
    for pair in shlex.split(assignments):
        key, equals, value = pair.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"-p {name}: expected key=value pairs after the template name, got {pair!r}")
        values[key] = value
    return template, {**magics.namespace, **values}


def _attachments(magics: ClaudeSettings, args: Any) -> list[Attachment]:
    """What -a, --fig, --recent and --error attach, in that order; any failure sends nothing."""
    from ..attach.interpolate import Unresolved, lookup
    from ..attach.registry import AttachmentError, check_image_count, document_named

    attachments = []
    for name in [n for value in args.attach or [] for n in value.split(",") if n]:
        try:
            obj = lookup(name, magics.namespace)
        except Unresolved as why:
            if (document := document_named(f"`{name}`", name)) is None:
                raise AttachmentError(f"-a {name}: {why}, and no document file or https:// URL has that name") from None
            attachments.append(document)
            continue
        attachments.append(magics.attach(f"`{name}`", obj))
    if args.fig is not None:
        attachments += magics.notebook.figures(None if args.fig == -1 else args.fig)
    if args.recent:
        attachments.append(magics.notebook.recent_cells(args.recent, magics.attachment_chars))
    if args.error:
        attachments.append(magics.notebook.error(magics.attachment_chars))
    check_image_count(attachments)
    return attachments


def _named(attachments: list[Attachment]) -> tuple[Attached, ...]:
    """The attachments as the answer's provenance names them: an image by its bytes' hash."""
    from ..core.provenance import Attached

    return tuple(Attached.of(a.label.strip("`"), a.kind, a.image.data if a.image else (a.text or "").encode()) for a in attachments)


def _ask_each(magics: ClaudeSettings, args: Any, prompt: str) -> None:
    """``--each ROWS``: the cell is a template asked of every row (see :mod:`.rows`)."""
    from argparse import Namespace

    from IPython.display import display

    from ..attach.interpolate import Unresolved, lookup
    from ..core.table import rows_of
    from ..core.tools import tools_named
    from .rows import EACH_ALONE, map_rows

    if not args.each:
        raise UsageError("--schema and --batch go with --each ROWS: the variable holding the rows")
    if clashing := [option for option, name in EACH_ALONE.items() if getattr(args, name)]:
        raise UsageError(f"--each can't go with {clashing[0]}: it asks a one-off question of every row (--estimate shows what the job could cost)")
    try:
        rows = lookup(args.each, magics.namespace)
        schema = lookup(args.schema, magics.namespace) if args.schema else None
    except Unresolved as why:
        raise UsageError(f"--each {args.each}: {why}") from None
    names = [n for value in args.attach or [] for n in value.split(",") if n]
    columns = set(rows_of(rows).names)
    shared = _attachments(magics, Namespace(**{**vars(args), "attach": [n for n in names if n not in columns]}))
    result = map_rows(
        magics,
        prompt,
        rows,
        schema=schema,
        model=args.model,
        system=args.system,
        max_tokens=args.max_tokens,
        effort=args.effort,
        thinking=False if args.think is None else (True if args.think == 0 else args.think),
        tools=tools_named(args.tools or "", magics.namespace),
        attach=[n for n in names if n in columns],
        shared=[b for a in shared for b in a.blocks()],
        batch=True if args.batch else None,
        estimate_only=args.estimate,
        yes=args.yes,
        send_anyway="add --yes",
    )
    if result is None:
        return
    if args.output:
        magics.namespace[args.output] = result
    display(result)


# --- answering ----------------------------------------------------------------------------------


def _send(
    magics: ClaudeSettings,
    question: list[dict[str, Any]],
    options: AskOptions,
    store_as: str | None,
    approve: Approve,
    attachments: tuple[Attached, ...] = (),
) -> Answer:
    """Ask, then show the footer and store the text in ``store_as``, even for a partial answer."""
    from ..core.engine import AnswerCutOff, ask
    from ..core.spending import Refused
    from ..ui.render import show_footer

    settings = magics.client_settings()
    session = magics.session
    try:
        answer = ask(
            session, question, options, settings, lambda: _open_renderer(magics), magics.cell, _show_tool_run, approve, attachments, _show_server_call
        )
    except Refused as refused:
        raise ClaudeMagicError(str(refused)) from None
    except AnswerCutOff as cut:
        show_footer(footer(cut.answer), in_notebook=magics.in_notebook)
        if store_as:
            magics.namespace[store_as] = cut.answer.text
        raise ClaudeMagicError(explain_cut_off(cut.cause)) from None
    except KeyboardInterrupt:
        raise ClaudeMagicError("interrupted before the answer started; nothing was recorded") from None
    except ClaudeError as error:
        nothing_sent = isinstance(error, ConfigurationError) and not settings.credentials.present
        why_not_replayed = f"; {session.why_not_replayed()}" if nothing_sent and options.replay and not options.tools else ""
        raise ClaudeMagicError(explain(error, settings) + why_not_replayed) from None
    show_footer(footer(answer), in_notebook=magics.in_notebook)
    if answer.calls_not_run:
        warn(calls_not_run_note(answer.calls_not_run, options))
    if store_as:
        magics.namespace[store_as] = answer.text
    return answer


# --- what a question may cost -------------------------------------------------------------------


def _approval(magics: ClaudeSettings, *, yes: bool) -> Approve:
    """The caps a question's first request must pass: this notebook's budget, then (unless
    ``yes``) the user's answer when it could cost more than ``confirm_above_usd``."""
    return lambda request: approve_cost(magics, [request], yes=yes)


def approve_cost(magics: ClaudeSettings, requests: list[MessageRequest], *, yes: bool) -> None:
    """Raise :class:`~claude_magic.core.spending.Refused` unless ``requests`` (sent together) may go."""
    from ..core.pricing import format_cost
    from ..core.spending import combined, estimate

    client = magics.session.client(magics.client_settings())
    worst = combined([estimate(r.model, client.message_body(r, stream=True)) for r in requests])
    magics.within_caps(worst, f"this question could cost up to {format_cost(worst.most)} (with {worst.max_output:,} tokens of output)", yes=yes)


def _approve_all(magics: ClaudeSettings, requests: list[MessageRequest], *, yes: bool) -> None:
    """:func:`approve_cost` for requests sent at once, outside the turn engine (``--compare``)."""
    from ..core.spending import Refused

    try:
        approve_cost(magics, requests, yes=yes)
    except Refused as refused:
        raise ClaudeMagicError(str(refused)) from None


def _show_estimate(magics: ClaudeSettings, question: list[dict[str, Any]], options: AskOptions) -> None:
    """What the question could cost, from its input (the server's count where it answers, else
    the local estimate) to max_tokens of output; no question is sent."""
    from ..core.spending import estimate
    from . import dry_run

    settings = magics.client_settings()
    client = magics.session.client(settings)
    request = magics.session.build_request(question, options, magics.cell)
    try:
        counted: int | None = client.count_tokens(request)
        how = "counted by the server (POST /v1/messages/count_tokens, the one request made)"
    except ClaudeError as error:
        counted, how = None, f"a local estimate ({explain(error, settings)}); nothing was sent"
    cost = estimate(request.model, client.message_body(request, stream=True), counted)
    lines = [
        f"{cost.model} · the question was not sent",
        f"Input: {cost.input_tokens:,} tokens, {how}.",
        f"Of the input, {cost.cacheable_tokens:,} tokens are a prefix the prompt cache may hold (read from it, or written to it).",
        f"Output: up to {cost.max_output:,} tokens (max_tokens, thinking included).",
        f"Cost: {cost.text}, from the prefix read from the cache and no output, to the prefix written and max_tokens of output.",
    ]
    dry_run.show_estimate(magics, lines, cost, doing="asking it")


def _open_renderer(magics: ClaudeSettings) -> Renderer:
    from ..ui.render import FinalAnswer, NotebookAnswer, TerminalAnswer

    if not magics.in_notebook:
        return TerminalAnswer()
    return NotebookAnswer(refresh_rate=magics.refresh_rate) if magics.live_updates else FinalAnswer()


def _show_tool_run(run: ToolRun) -> None:
    """A tool call and its result, collapsed, shown as it happens. The name and the arguments
    come from the model: the summary is one escaped line (a blank line would end the HTML
    block and let Markdown in; a ``$`` in it pairs with nothing), the output a fenced block no
    line of it can close."""
    from ..ui.render import fenced, show_text
    from ..ui.safe_markdown import LITERAL_DOLLAR

    arguments = ", ".join(f"{k}={v!r}" for k, v in run.arguments.items())
    outcome = "error" if run.is_error else "result"
    summary = " ".join(f"🔧 {run.name}({arguments}) → {outcome}".splitlines())
    shown = html.escape(summary).replace("$", LITERAL_DOLLAR)
    show_text({"text/markdown": f"<details><summary>{shown}</summary>\n\n{fenced(run.output)}\n\n</details>", "text/plain": f"{summary}: {run.output}"})


def _show_server_call(call: ServerCall) -> None:
    """A web search, a fetched page or an MCP tool call the API ran, collapsed, as it happens."""
    from ..ui.render import show_text
    from ..ui.server_calls import markdown_bundle

    show_text(markdown_bundle(call))


def _show_request(magics: ClaudeSettings, question: list[dict[str, Any]], options: AskOptions, attachments: list[Attachment], count: bool) -> None:
    from . import dry_run

    request = magics.session.build_request(question, options, magics.cell)
    dry_run.show(magics.session.client(magics.client_settings()), request, attachments, count=count)


def _compare(magics: ClaudeSettings, args: Any, question: list[dict[str, Any]], options: AskOptions) -> None:
    """Several answers side by side; none joins the conversation until kept."""
    from IPython.display import display

    from . import compare
    from .settings import Compared

    columns = compare.variants(options, args.compare, args.sweep, args.samples, magics.namespace)
    _approve_all(magics, [magics.session.build_request(question, c.options, magics.cell) for c in columns], yes=args.yes)
    handle = display({"text/plain": "…"}, raw=True, display_id=True)
    drawn: list[tuple[int, str | None]] = []

    def draw(current: list[compare.Column]) -> None:
        state = [(len(c.pieces) + (c.total is not None) + (c.error is not None), c.waiting) for c in current]
        if state != drawn:
            drawn[:] = state
            handle.update(compare.bundle(current), raw=True)

    compare.run(magics.session, question, columns, magics.client_settings(), magics.cell, draw)
    magics.compared = Compared(question, columns)
    note(f"{len(columns)} answers, none added to the conversation; keep one with %claude keep N")


def _offer_code(magics: ClaudeSettings, text: str) -> None:
    from .code_cells import cells_for, put_in_next_cells, python_blocks

    cells = cells_for(python_blocks(text), one_cell_each=magics.code_cells == "each")
    note(put_in_next_cells(magics.shell, cells, magics.in_vscode))
