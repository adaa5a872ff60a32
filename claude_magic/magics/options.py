"""The magic's options: declared once, in groups, with IPython's ``magic_arguments`` (so
``%%claude?`` is generated from them), and how a line is split into options and a question.

A ``%%claude`` line holds options only, split as a shell would. A ``%claude`` one-liner holds
leading options and then the question, kept verbatim (apostrophes and all); ``--`` ends the
options explicitly.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, argument_group, kwds, magic_arguments

from ..api.settings import EFFORT_LEVELS

DECLARATIONS = [
    argument_group("Model and answer"),
    argument("-m", "--model", help="Model for this question (default: ClaudeMagics.model)."),
    argument("--max-tokens", type=int, help="Most tokens the answer may use."),
    argument("-t", "--temperature", type=float, help="Sampling temperature, sent only when given."),
    argument("--effort", choices=EFFORT_LEVELS, help="How hard the model works (output_config.effort)."),
    argument("-s", "--system", help="System prompt for this question."),
    argument(
        "--think",
        nargs="?",
        type=int,
        const=0,
        metavar="N",
        help="Let the model think first, shown collapsed above the answer: adaptive thinking (current models, "
        "steered by --effort), or with a budget of N tokens where the model takes one.",
    ),
    argument("--tools", metavar="F,G", help="Let Claude call these notebook functions (schemas from their signatures and docstrings); each call is shown."),
    argument(
        "--web",
        action="store_true",
        help="Let Claude search the web and fetch pages (the API's web_search and web_fetch, at most "
        "ClaudeMagics.web_max_uses each); each search and page shows collapsed, the sources under the answer.",
    ),
    argument("--mcp", metavar="NAME", help="Let Claude use the remote MCP server(s) NAME,OTHER declared in ClaudeMagics.mcp_servers."),
    argument_group("Context from the notebook"),
    argument(
        "-a",
        "--attach",
        nargs="+",
        action="extend",
        metavar="NAME",
        help="Attach variables: DataFrames and Series as summaries, images (figures, PIL, arrays, bytes, "
        "image files) for vision, documents (PDF and text files, Paths, PDF bytes, https:// URLs of PDFs) to read, "
        "anything else as text. A name that is no variable may be a document file or an https:// URL. "
        "One-liners: -a df,fig or -a df -a fig.",
    ),
    argument(
        "--cite",
        action="store_true",
        help="Turn on citations for the attached documents: numbered markers at the cited passages, the sources "
        "(title, page or characters, cited text) under the answer (default: ClaudeMagics.cite).",
    ),
    argument("--fig", nargs="?", type=int, const=-1, metavar="N", help="Attach the last plot an earlier cell displayed, or those cell [N] displayed."),
    argument("--recent", type=int, metavar="N", help="Attach the source (and short output) of the last N cells."),
    argument("--error", action="store_true", help="Attach the last exception, with its traceback."),
    argument("-p", "--template", metavar="NAME", help="Ask the prompt template held in the variable NAME; key=value pairs follow it and fill its {placeholders}."),
    argument_group("Conversation"),
    argument("--new", action="store_true", help="Start a fresh conversation first."),
    argument("--no-history", action="store_true", help="A one-off: neither send nor record the conversation."),
    argument("--cached", action="store_true", help="Answer from the answer cache when this exact request was answered before."),
    argument("--fresh", action="store_true", help="Ask even if the answer is cached (and cache the new one)."),
    argument_group("Several answers at once"),
    argument("--compare", metavar="MODELS", help="Ask each of these comma-separated models at once; answers side by side."),
    argument("--sweep", metavar="SETTING=V1,V2", help="Ask once per value of a setting (model, effort, max_tokens, thinking, temperature, or system=LIST_VARIABLE)."),
    argument("-n", "--samples", type=int, metavar="N", help="Draw N answers to the question at once."),
    argument_group("Over many rows"),
    argument(
        "--each",
        metavar="ROWS",
        help="Ask the cell of every row of the variable ROWS (a DataFrame: {column}; a Series or a list: {item}); "
        "the result has a row per row, same order and index (-o NAME keeps it). -a COLUMN attaches each row's value.",
    ),
    argument("--schema", metavar="NAME", help="--each: the answer's form, held in the variable NAME (a pydantic model, a TypedDict or a JSON schema): one column per field."),
    argument("--batch", action="store_true", help="--each: send the rows as a Message Batch (half the price; most batches end within the hour)."),
    argument_group("Output"),
    argument("-o", "--output", metavar="NAME", help="Also store the answer's text in the variable NAME."),
    argument("--code", action="store_true", help="Put the answer's Python code into new cells below (never run)."),
    argument("--dry-run", action="store_true", help="Show the exact request body and a local estimate of its size; send nothing."),
    argument("--count", action="store_true", help="As --dry-run, with the input tokens counted by the server (count_tokens is the one request made)."),
    argument("--estimate", action="store_true", help="Show what the question could cost, from its input tokens (counted by the server where it can) to max_tokens of output; send no question."),
    argument("--yes", action="store_true", help="Send without asking, even above ClaudeMagics.confirm_above_usd."),
    argument_group("The question"),
    argument(
        "question",
        nargs="*",
        help="the rest of the line for %%claude, the cell for %%%%claude. {name} inserts a variable "
        "({df.shape}, {items[0]}, {In[3]} too), {{name}} a literal {name}. A first word that names "
        "a command (below) runs it; put -- first to ask a question that starts with one.",
    ),
]
"""Every option, in the order ``%%claude?`` shows them."""


def declared(epilog: str) -> Callable[[Any], Any]:
    """Put :data:`DECLARATIONS` on the magic and build its parser, with ``epilog`` after them
    (the magic gains a ``parser`` attribute: IPython's decorators are untyped)."""

    def declare(magic: Any) -> Any:
        for decorator in reversed(DECLARATIONS):  # magic_arguments reads them back in source order
            magic = decorator(magic)
        return magic_arguments()(kwds(epilog=epilog)(magic))

    return declare


_AT_LEAST_ONE = {"max_tokens": "--max-tokens", "samples": "--samples", "recent": "--recent"}


def check_option_values(args: Any) -> None:
    """Refuse values that would otherwise be quietly replaced by a default or ignored."""
    if args.model is not None and not args.model.strip():
        raise UsageError("-m: the model name is empty; leave -m out for the default (ClaudeMagics.model)")
    for name, option in _AT_LEAST_ONE.items():
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"{option} {value}: give a number of at least 1")


# --- splitting a line ---------------------------------------------------------------------------


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


# --- a trailing question mark -------------------------------------------------------------------

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
