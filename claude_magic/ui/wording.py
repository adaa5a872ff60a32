"""What the user reads when something happens: the footer under an answer, and one line for
each failure. The magic and the chat panel both say things in these words.

A failure is one line, never a traceback: :class:`ClaudeMagicError` is how IPython shows it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from ..api.errors import (
    SPEND_LIMIT_REACHED,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ClaudeError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterrupted,
)
from ..api.settings import mask_secret

if TYPE_CHECKING:
    from ..api.settings import ClientSettings
    from ..core.engine import Answer
    from ..core.provenance import Provenance
    from ..core.session import AskOptions


def note(message: str) -> None:
    """Information: a quiet line on stdout (Jupyter paints stderr red, as for errors)."""
    print(f"claude: {message}")


def warn(message: str) -> None:
    """Something went otherwise than asked, though nothing failed: one line on stderr."""
    print(f"claude: {message}", file=sys.stderr)


class ClaudeMagicError(Exception):
    """A user-facing failure: shown as its one line, with no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31mclaude:\x1b[0m {self}"]


def footer(answer: Answer) -> str:
    """The line under an answer: model, tokens, cost, timings, and anything unusual."""
    from ..core.budget import left_out_note
    from ..core.pricing import WEB_SEARCH_USD, TokenUsage, cost, format_cost

    usage = answer.usage
    tokens = TokenUsage.from_api(usage)
    output = f"~{tokens.output:,} out tokens (estimated from what arrived)" if answer.output_estimated else f"{tokens.output:,} out tokens"
    parts = [answer.model, f"{tokens.input:,} in · {output}"]
    if answer.cached_at is not None:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(answer.cached_at))
        return " · ".join([*parts, f"from the answer cache (received {saved}; --fresh asks again), no cost"])
    if answer.replayed and answer.provenance is not None:  # in place of what it cost and took when asked
        parts.append(f"{replayed_note(answer.provenance)}, no cost")
    else:
        if tokens.cache_read or tokens.written:
            parts.append(f"cache: {tokens.cache_read:,} read, {tokens.written:,} written")
        spent = cost(answer.model, usage) if usage else None
        parts.append(f"≈ {format_cost(spent)}" if spent is not None else "cost unknown")
        if answer.web_searches:
            searches = f"{answer.web_searches} web search{'es' if answer.web_searches != 1 else ''}"
            parts.append(f"{searches} ≈ {format_cost(answer.web_searches * WEB_SEARCH_USD)}")
        if answer.web_fetches:
            parts.append(f"{answer.web_fetches} page{'s' if answer.web_fetches != 1 else ''} fetched")
        if answer.time_to_first_token is not None:
            parts.append(f"first token {answer.time_to_first_token:.2f} s")
        parts.append(f"total {answer.total_time:.2f} s")
    if not answer.complete:
        parts.append("incomplete")
    elif answer.stop_reason == "max_tokens":
        parts.append("stopped at max_tokens (raise --max-tokens)")
    elif answer.stop_reason == "pause_turn":
        parts.append("paused by the API after the most continuations (ClaudeMagics.max_tool_rounds); ask a follow-up to go on")
    elif answer.stop_reason not in (None, "end_turn", "stop_sequence"):
        parts.append(f"stop reason: {answer.stop_reason}")
    if left_out := left_out_note(answer.turns_left_out, answer.images_left_out):
        parts.append(left_out)
    return " · ".join(parts)


def replayed_note(provenance: Provenance) -> str:
    """Where a replayed answer came from: ``replayed from the notebook (answered 2026-11-20 by …)``."""
    return f"replayed from the notebook (answered {provenance.answered_at[:10]} by {provenance.model})"


def explain(error: ClaudeError, settings: ClientSettings) -> str:
    """One line that says what went wrong and what to do about it."""
    if isinstance(error, AuthenticationError):
        key = mask_secret(settings.credentials.api_key or settings.credentials.auth_token)
        return f"the API rejected the key {key} (401 {error.message}); check ANTHROPIC_API_KEY{_request(error)}"
    if isinstance(error, PermissionDeniedError):
        return f"this key may not do that (403 {error.message}){_request(error)}"
    if isinstance(error, NotFoundError):
        return f"not found (404 {error.message}); check the model id: %claude models lists those your key can use{_request(error)}"
    if isinstance(error, APIError) and error.error_code == SPEND_LIMIT_REACHED:
        return (
            f"the organisation's monthly spend limit is reached (429 {SPEND_LIMIT_REACHED}: {error.message}); "
            f"not retried: it lifts when the limit is raised in the Anthropic Console, or next month{_request(error)}"
        )
    if isinstance(error, BillingError):
        return f"{error.message} (402 billing_error){_request(error)}"
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


def waiting_line(waited: float) -> str:
    """What a question queued by the Jupyter server for the shared rate limit shows meanwhile."""
    return f"waiting for the rate limit ({waited:.0f} s)"


def calls_not_run_note(calls: list[str], options: AskOptions) -> str:
    """Why the answer's last tool calls were not run, and that the conversation goes on."""
    listed = ", ".join(calls)
    if options.tools:
        why = f"stopped after {options.max_tool_rounds} tool rounds (ClaudeMagics.max_tool_rounds); {listed} was not run"
    else:
        why = f"Claude asked to call {listed}, which is not among --tools; it was not run"
    return f"{why}. The conversation goes on: ask a follow-up to let Claude continue"


def explain_cut_off(cause: BaseException) -> str:
    """Why an answer stopped early; what arrived is kept."""
    import asyncio  # loaded already wherever a task can be cancelled

    if isinstance(cause, asyncio.CancelledError):
        return "stopped; the partial answer above is kept"
    if isinstance(cause, KeyboardInterrupt):
        return "interrupted; the partial answer above is kept"
    if isinstance(cause, StreamInterrupted):
        return f"{cause}; the partial answer above is kept"
    return f"the answer was cut off by an error ({cause}); the partial answer above is kept"


def _request(error: APIError) -> str:
    return f" [request-id {error.request_id}]" if error.request_id else ""
