"""What ``%claude history``, ``%claude usage`` and ``%claude why`` show: a Markdown table and its plain-text twin.

Every value is shown as text (:func:`render.literal_markdown`): a question, a notebook's path.
Question previews are scrubbed of credentials (:func:`claude_magic.redaction.scrub`) before
they are shortened, so not even a piece of a key shows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.pricing import Tally
from ..core.spending import notebook_usage
from ..ui.render import literal_markdown

if TYPE_CHECKING:
    from ..core.conversation import Conversation, Exchange, SetAside
    from ..core.provenance import Provenance
    from ..core.store import ConversationStore

PREVIEW_CHARS = 60
SESSION_ONLY = (
    "this conversation lives for this session only: the kernel was not told which notebook it runs "
    "(Jupyter sets JPY_SESSION_NAME, VS Code __vsc_ipynb_file__), so nothing is saved"
)


def history_report(conversation: Conversation, *, set_aside: bool = False) -> dict[str, str]:
    """The turns: cell and execution count, a short preview of the question, tokens; with
    ``set_aside``, the exchanges re-runs took out too, numbered for ``%claude restore N``."""
    exchanges = conversation.exchanges
    header = f"{len(exchanges)} turn{'s' if len(exchanges) != 1 else ''}"
    if set_aside:
        header += f", {len(conversation.set_aside)} set aside"
    header += f" · {_kept_where(conversation.store)}" if conversation.store else f" · {session_only(conversation)}"
    rows = [(str(number), _cell_label(e), preview(e), _tokens(e)) for number, e in enumerate(exchanges, 1)]
    columns = ("turn", "cell", "question", "tokens")
    if not set_aside:
        return _bundle(header, columns, rows, empty="No questions asked yet.")
    rows += [(f"set aside {n}", _cell_label(s.exchange), preview(s.exchange), _why_set_aside(s)) for n, s in enumerate(conversation.set_aside, 1)]
    header += " (%claude restore N brings set-aside exchange N back as the latest)" if conversation.set_aside else ""
    return _bundle(header, ("turn", "cell", "question", "tokens / why"), rows, empty="No questions asked yet.")


def _why_set_aside(set_aside: SetAside) -> str:
    if set_aside.replaced:
        return "replaced by its cell's re-run"
    return f"set aside when {_cell_label(set_aside.by).strip()} ran again"


def usage_report(session: Tally, conversation: Conversation) -> dict[str, str]:
    """Tokens and estimated cost: this session, and everything the notebook ever spent."""
    rows = [_usage_row("this session", session)]
    if conversation.store is not None:
        rows.append(_usage_row("this notebook", notebook_usage(conversation.store)))
    columns = ("", "requests", "input", "cache write", "cache read", "output", "est. cost")
    note = f"Cache reads: {session.cached_share:.0%} of this session's input tokens."
    note += " Costs are estimates from claude_magic/pricing.py, in USD."
    if conversation.store is None:
        note += f" Notebook totals: none, {session_only(conversation)}."
    return _bundle(note, columns, rows, empty="")


def provenance_report(provenance: Provenance, which: str) -> dict[str, str]:
    """What produced an answer, one field a row (every value is data: shown as text)."""
    from ..core.pricing import TokenUsage, format_cost
    from ..ui.wording import replayed_note

    shaping = provenance.settings
    tokens = TokenUsage.from_api(provenance.usage)
    asked_for = f" (asked for {shaping.model})" if shaping.model and shaping.model != provenance.model else ""
    rows = [
        ("answered", f"{provenance.answered_at} (UTC)"),
        *([("replayed", f"{replayed_note(provenance)} at {provenance.replayed_at}")] if provenance.replayed_at else []),
        *([("from the answer cache", f"at {provenance.cached_at}")] if provenance.cached_at else []),
        ("model", f"{provenance.model}{asked_for}"),
        ("API version", provenance.api_version),
        ("request SHA-256", provenance.request_sha256 or "(not sent)"),
        ("max tokens", f"{shaping.max_tokens:,}"),
        ("effort", shaping.effort or "(the model's default)"),
        ("thinking", json.dumps(shaping.thinking, sort_keys=True) if shaping.thinking else "off"),
        ("temperature", f"{shaping.temperature:g}" if shaping.temperature is not None else "(not sent)"),
        ("system prompt", f"SHA-256 {shaping.system_sha256}" if shaping.system_sha256 else "(none)"),
        ("tools", ", ".join(shaping.tools) or "(none)"),
        *((f"attachment {n}", f"{a.name} ({a.kind}), SHA-256 {a.sha256}") for n, a in enumerate(provenance.attachments, 1)),
        ("usage", f"{tokens.input:,} in · {tokens.output:,} out · cache: {tokens.cache_read:,} read, {tokens.written:,} written"),
        ("estimated cost", format_cost(provenance.cost_usd)),
        ("stop reason", provenance.stop_reason or "(none)" if provenance.complete else "(cut off)"),
        ("request id", provenance.request_id or "(none)"),
        *((f"tool round {n}", f"request SHA-256 {r.request_sha256}, request id {r.request_id}") for n, r in enumerate(provenance.tool_rounds, 1)),
        ("message id", provenance.message_id or "(none)"),
        ("package", f"claude-magic {provenance.package_version}"),
    ]
    return _bundle(f"What produced {which}", ("field", "value"), rows, empty="")


def server_usage_report(summary: dict[str, Any]) -> dict[str, str]:
    """``%claude usage --all``: what the Jupyter server's ledger counts for all its kernels: today,
    this month, and this month by notebook and by model (the server's figures, shown as text)."""
    zone = str(summary.get("timezone") or "UTC")
    today, month = summary.get("today") or {}, summary.get("month") or {}
    rows = [_ledger_row("today", today), _ledger_row("this month", month)]
    rows += [_ledger_row(f"notebook {group.get('notebook') or '(no notebook)'}", group) for group in summary.get("by_notebook") or []]
    rows += [_ledger_row(f"model {group.get('model') or '?'}", group) for group in summary.get("by_model") or []]
    budgets = [
        f"{name} budget ${period['budget_usd']:,.2f}, ${period.get('left_usd') or 0:,.2f} left"
        for name, period in (("daily", today), ("monthly", month))
        if period.get("budget_usd") is not None
    ]
    note = f"Every kernel of this Jupyter server (notebooks and models: this month; days and months in {zone}). "
    note += f"{'; '.join(budgets)}. " if budgets else ""
    note += "Costs are estimates, in USD."
    columns = ("", "requests", "input", "cache write", "cache read", "output", "est. cost")
    return _bundle(note, columns, rows, empty="")


def _ledger_row(label: str, figures: dict[str, Any]) -> tuple[str, ...]:
    from ..core.pricing import format_cost

    tokens = figures.get("tokens") or {}
    unpriced = int(figures.get("unpriced_requests") or 0)
    spent = format_cost(float(figures.get("cost_usd") or 0.0)) + (f" (+{unpriced} unpriced)" if unpriced else "")
    counts = (figures.get("requests"), tokens.get("input"), tokens.get("cache_write"), tokens.get("cache_read"), tokens.get("output"))
    return (label, *(f"{int(count or 0):,}" for count in counts), spent)


def session_only(conversation: Conversation) -> str:
    """Why the conversation is not kept: the notebook's log could not be read, or no notebook was named."""
    if conversation.unsaved:
        return f"this conversation lives for this session only: {conversation.unsaved}"
    return SESSION_ONLY


def preview(exchange: Exchange, limit: int = PREVIEW_CHARS) -> str:
    """The question's own text (its last text block), scrubbed then shortened, with a note of its images."""
    from ..api.redaction import scrub

    texts = [b.get("text", "") for b in exchange.question if b.get("type") == "text"]
    text = " ".join(scrub(texts[-1] if texts else "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    images = sum(1 for b in exchange.question if b.get("type") == "image")
    others = len(exchange.question) - 1 - images  # attached context (captions, summaries, code, …)
    extras = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in ((images, "image"), (others, "attached block")) if n > 0]
    return f"{text} (+{', '.join(extras)})" if extras else text


def _kept_where(store: ConversationStore) -> str:
    return f"notebook {store.notebook}, kept in {store.path}"


def _cell_label(exchange: Exchange) -> str:
    cell = exchange.cell
    count = f"[{cell.execution_count}]" if cell.execution_count is not None else "[ ]"
    return f"{count} {cell.cell_id[:8]}" if cell.cell_id else count


def _tokens(exchange: Exchange) -> str:
    from ..core.pricing import TokenUsage

    tokens = TokenUsage.from_api(exchange.usage)
    cut = "" if exchange.complete else " (cut off)"
    return f"{tokens.prompt:,} in · {tokens.output:,} out{cut}"


def _usage_row(label: str, tally: Tally) -> tuple[str, ...]:
    t = tally.tokens
    return (label, f"{tally.requests:,}", f"{t.input:,}", f"{t.written:,}", f"{t.cache_read:,}", f"{t.output:,}", tally.cost_text())


def _bundle(header: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], empty: str) -> dict[str, Any]:
    if not rows:
        return {"text/markdown": f"{literal_markdown(header)}\n\n{literal_markdown(empty)}", "text/plain": f"{header}\n\n{empty}"}
    markdown = "\n".join(
        [
            literal_markdown(header),
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            *("| " + " | ".join(literal_markdown(value) for value in row) + " |" for row in rows),
        ]
    )
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]
    plain = "\n".join(
        [header, "", *("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in [columns, *rows])]
    )
    return {"text/markdown": markdown, "text/plain": plain}
