"""The magic's settings and kernel-side state: traitlets (``%config ClaudeMagics.x = ...``), the
session, the notebook's context, and which cell is running.

:class:`ClaudeSettings` is the base of :class:`~claude_magic.magics.core.ClaudeMagics`; the
modules that ask and that run commands take it as their one argument, so each is a set of
plain functions over the same state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, default, observe, validate

from ..api.errors import ClaudeError
from ..api.settings import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    EFFORT_LEVELS,
    ClientSettings,
    Credentials,
    SecretStr,
    as_effort,
    jupyter_proxy,
)
from ..attach.notebook import NotebookContext, running_cell_number
from ..core.conversation import CellRun, notebook_path
from ..core.session import ClaudeSession
from ..defaults import (
    DEFAULT_ATTACHMENT_CHARS,
    DEFAULT_BATCH_ABOVE_ROWS,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_TOOL_ROUNDS,
    DEFAULT_REFRESH_RATE,
    DEFAULT_WEB_MAX_USES,
)
from ..ui.wording import ClaudeMagicError

if TYPE_CHECKING:
    from ..api.limiter import Limits, RateLimiter
    from ..attach.registry import Attachment
    from ..core.spending import CostRange, NotebookSpending
    from ..ui.panel import KernelSide, PanelSettings


JUPYTER_PROXY_ENV = "CLAUDE_MAGIC_PROXY"
"""Set in a kernel the Jupyter server extension started: its proxy's URL (which paces every kernel)."""

_ENVIRONMENT_DEFAULTS = {
    "api_key": "ANTHROPIC_API_KEY",
    "base_url": "ANTHROPIC_BASE_URL",
    "live_updates": "CLAUDE_MAGIC_LIVE_UPDATES",
    "replay": "CLAUDE_MAGIC_REPLAY",
}
"""Settings that, when not set, are read from the environment (the SDK's variables, and ours)."""


def limits_of(text: str) -> Limits:
    """``rate_limits`` as limits: a tier's, or ``REQUESTS/INPUT/OUTPUT[/WINDOW]``."""
    from ..api.limiter import Limits

    if "/" not in text:
        return Limits.for_tier(text.strip())
    try:
        numbers = [float(part) for part in text.split("/")]
    except ValueError:
        raise ValueError(f"{text!r} is not REQUESTS/INPUT_TOKENS/OUTPUT_TOKENS[/SECONDS]") from None
    if len(numbers) not in (3, 4):
        raise ValueError(f"{text!r}: give 3 numbers (requests, input and output tokens a minute), or 4 (and the window)")
    return Limits(int(numbers[0]), int(numbers[1]), int(numbers[2]), numbers[3] if len(numbers) == 4 else 60.0)


@dataclass
class Compared:
    """The last ``--compare`` / ``--sweep`` / ``--samples``: its question and columns, for ``%claude keep``."""

    question: list[dict[str, Any]]
    columns: list[Any]


class ClaudeSettings(Magics):
    """Settings and state shared by everything the magic does."""

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
    max_tool_rounds = Int(DEFAULT_MAX_TOOL_ROUNDS, help="--tools: most rounds of tool calls before the answer stops.").tag(config=True)
    cache = Bool(
        False, help="Answer an identical earlier request (same model, settings, system, history and question) from the answer cache."
    ).tag(config=True)
    code_cells = Enum(
        ("joined", "each"), "joined", help="--code: the answer's Python blocks joined in one new cell, or one cell each."
    ).tag(config=True)
    attachment_chars = Int(
        DEFAULT_ATTACHMENT_CHARS, help="Characters one attached object's text may take (DataFrame summaries, strings, …)."
    ).tag(config=True)
    web_max_uses = Int(DEFAULT_WEB_MAX_USES, help="--web: most web searches (and, apart, page fetches) one request may make.").tag(config=True)
    mcp_servers = Dict(
        help="Remote MCP servers --mcp NAME may use: {NAME: {'url': 'https://…', 'authorization_token': '…' (or "
        "'authorization_token_env': 'VARIABLE'), 'allowed_tools': ['…']}}. Tokens are shown masked and never written."
    ).tag(config=True)
    cite = Bool(False, help="--cite for every question: citations from the attached documents, shown with their sources.").tag(config=True)
    prompt_caching = Bool(
        True, help="Mark the stable prefix (system prompt, history up to the previous turn) for prompt caching."
    ).tag(config=True)
    context_budget = Int(
        None,
        allow_none=True,
        help="Most input tokens a question may send; older turns (their images first) are left out "
        "to fit. Unset: the model's context window less max_tokens.",
    ).tag(config=True)
    budget_usd = Float(
        None,
        allow_none=True,
        help="Most this notebook's conversation may spend in all, in USD (its usage survives restarts); a question "
        "that could take it past this is not sent. Unset: no cap.",
    ).tag(config=True)
    confirm_above_usd = Float(
        1.0,
        allow_none=True,
        help="Ask before sending a question that could cost more than this, in USD (its input, and max_tokens of "
        "output). Unset: never ask.",
    ).tag(config=True)
    replay = Bool(
        None,
        allow_none=True,
        help="Answer a question whose exact request was answered in this notebook's saved outputs from "
        "there, sending nothing. Default from $CLAUDE_MAGIC_REPLAY (1 or 0), else on when neither a key "
        "nor a base URL is set (a shared notebook re-run without a key).",
    ).tag(config=True)
    rows_concurrency = Int(
        DEFAULT_CONCURRENCY, help="claude_magic.map and --each: the most requests a job over rows has in flight at once."
    ).tag(config=True)
    rate_limits = Unicode(
        "pro",
        help="claude_magic.map and --each, without the Jupyter server's proxy: the rate limits a job paces itself under, "
        "a tier ('free', 'pro') or REQUESTS/INPUT_TOKENS/OUTPUT_TOKENS a minute ('4000/2000000/400000'; a fourth "
        "number: a window of that many seconds instead). The anthropic-ratelimit-* headers of each response lower them.",
    ).tag(config=True)
    batch_above_rows = Int(
        DEFAULT_BATCH_ABOVE_ROWS,
        allow_none=True,
        help="claude_magic.map and --each: a job with more rows than this to send goes as a Message Batch (half the "
        "price; most batches end within an hour, all within 24 h) unless batch=False. Unset: only when asked.",
    ).tag(config=True)
    batch_poll_seconds = Float(
        60.0, help="Longest wait, in seconds, between two looks at a Message Batch (the first after 1 s, then twice as long each time)."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._from_config_files = set(self.config.get(type(self).__name__, {}))
        """Settings the configuration (files, command line) gave before the magic was loaded."""
        self._set_since: set[str] = set()
        """Settings changed after loading: ``%config``, or code."""
        self.observe(lambda change: self._set_since.add(change["name"]), names=self.configurable())
        self.session = ClaudeSession(locate=self._notebook_path)
        self._apply_request_policy()
        self.cell = CellRun()
        """The cell running now (its id, execution count and run serial)."""
        self._runs = 0
        self.compared: Compared | None = None
        self._spending: NotebookSpending | None = None
        self._limiters: dict[str, RateLimiter] = {}
        self.notebook = NotebookContext(is_own_error=lambda error: isinstance(error, (ClaudeMagicError, UsageError)))

    # --- traits ------------------------------------------------------------------------------

    @default("live_updates")
    def _live_updates_from_env(self) -> bool:
        return os.environ.get("CLAUDE_MAGIC_LIVE_UPDATES", "1").strip().lower() not in ("0", "false", "no", "off")

    @default("replay")
    def _replay_from_env(self) -> bool | None:
        value = os.environ.get("CLAUDE_MAGIC_REPLAY", "").strip().lower()
        return None if not value else value not in ("0", "false", "no", "off")

    @validate("api_key")
    def _mask_api_key(self, proposal: Any) -> SecretStr | None:
        return SecretStr(proposal["value"]) if proposal["value"] else None

    @observe("base_url", "api_key", "api_version", "max_retries", "timeout")
    def _settings_changed(self, change: Any) -> None:
        self.session.close()

    @validate("mcp_servers")
    def _checked_servers(self, proposal: Any) -> dict[str, Any]:
        """Each server declared usably (its token masked wherever the setting is printed)."""
        from ..core.server_tools import mcp_server

        servers = {}
        for name, declared in proposal["value"].items():
            try:
                server = mcp_server(str(name), declared, os.environ)
            except ClaudeError as error:
                raise TraitError(str(error)) from None
            token = {"authorization_token": server.token} if "authorization_token" in declared else {}
            servers[name] = {**declared, **token}
        return servers

    @validate("max_tokens", "max_tool_rounds", "web_max_uses", "rows_concurrency")
    def _at_least_one(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1, not {proposal['value']}")
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("model")
    def _named_model(self, proposal: Any) -> str:
        if not proposal["value"].strip():
            raise TraitError("model can't be empty: name a model (%claude models lists them)")
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("rate_limits")
    def _known_limits(self, proposal: Any) -> str:
        try:
            limits_of(proposal["value"])
        except ValueError as error:
            raise TraitError(f"rate_limits: {error}") from None
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("context_budget")
    def _positive_budget(self, proposal: Any) -> int | None:
        if proposal["value"] is not None and proposal["value"] < 1:
            raise TraitError("context_budget is a number of tokens (or None for the model's context window)")
        return proposal["value"]  # type: ignore[no-any-return]

    @validate("budget_usd", "confirm_above_usd")
    def _dollars(self, proposal: Any) -> float | None:
        if proposal["value"] is not None and proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} is an amount in USD, at least 0 (or None for no limit)")
        return proposal["value"]  # type: ignore[no-any-return]

    @observe("prompt_caching", "context_budget")
    def _request_policy_changed(self, change: Any) -> None:
        self._apply_request_policy()

    def _apply_request_policy(self) -> None:
        session = getattr(self, "session", None)  # None while traitlets applies the config in __init__
        if session is not None:
            session.prompt_caching = self.prompt_caching
            session.context_budget = self.context_budget

    # --- what the settings resolve to --------------------------------------------------------

    @classmethod
    def configurable(cls) -> list[str]:
        """Every setting, in the order the class declares them."""
        names = cls.class_trait_names(config=True)
        declared = [name for klass in reversed(cls.__mro__) for name in vars(klass) if name in names]
        return list(dict.fromkeys(declared))

    def source_of(self, name: str) -> str:
        """Where a setting's value comes from: ``%config`` (this session), the config file, the
        environment, or the default."""
        variable = _ENVIRONMENT_DEFAULTS.get(name)
        unset = variable is not None and getattr(self, name) is None  # the key and the URL: read from the environment
        if unset and name in ("api_key", "base_url") and self.client_settings().key_held_by_server:
            return "the Jupyter server (claude_magic extension)"
        if not unset and name in self._set_since:
            return "%config"
        if not unset and name in self._from_config_files:
            return "config file"
        if variable is not None and os.environ.get(variable):
            return f"environment ({variable})"
        return "default"

    def notebook_spent(self) -> float:
        """What this notebook's conversation has spent in all, in USD, archives included (this
        session's spending when the conversation is not kept)."""
        from ..core.spending import NotebookSpending

        store = self.session.conversation.store
        if store is None:
            return self.session.usage.dollars
        if self._spending is None or self._spending.store is not store:
            self._spending = NotebookSpending(store)
        return self._spending.dollars()

    def rows_limiter(self) -> RateLimiter | None:
        """The limiter jobs over rows pace themselves with, one for the kernel (so that one job
        after another still keeps to the limits); None when the kernel asks through a Jupyter
        server's proxy, which paces every kernel itself."""
        from ..api.limiter import RateLimiter

        proxy = os.environ.get(JUPYTER_PROXY_ENV)
        if proxy and self.client_settings().base_url.rstrip("/") == proxy.rstrip("/"):
            return None
        if self.rate_limits not in self._limiters:
            self._limiters[self.rate_limits] = RateLimiter(limits_of(self.rate_limits))
        return self._limiters[self.rate_limits]

    def within_caps(self, worst: CostRange, what: str, *, yes: bool, send_anyway: str = "add --yes") -> None:
        """Raise :class:`~claude_magic.core.spending.Refused` unless spending up to ``worst`` is
        allowed: by this notebook's budget, then, above ``confirm_above_usd`` (and unless ``yes``),
        by the user, asked about ``what`` ("this question could cost up to $1.20 …")."""
        from ..core.spending import check_budget

        check_budget(self.budget_usd, self.notebook_spent(), worst)
        if not yes and (threshold := self.passed_threshold(worst)) is not None:
            from ..ui.confirm import confirm_spending

            confirm_spending(what, threshold, send_anyway)

    def passed_threshold(self, worst: CostRange) -> float | None:
        """``confirm_above_usd`` when spending up to ``worst`` is above it, so the user is asked
        first; None when it isn't (or isn't set)."""
        threshold = self.confirm_above_usd
        return float(threshold) if threshold is not None and worst.most is not None and worst.most > threshold else None

    def client_settings(self) -> ClientSettings:
        """Effective settings: %config first, then the SDK's environment variables, then defaults."""
        env = Credentials.from_env()
        credentials = Credentials(api_key=str(self.api_key)) if self.api_key else env
        return ClientSettings(
            credentials=credentials,
            base_url=self._base_url(credentials),
            api_version=self.api_version,
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

    def replay_on(self) -> bool:
        """Whether questions are answered from the notebook's saved outputs: as set, else when
        there is no key and no base URL (nothing could be asked anyway)."""
        if self.replay is not None:
            return bool(self.replay)
        settings = self.client_settings()
        return not settings.credentials.present and not (self.base_url or os.environ.get("ANTHROPIC_BASE_URL"))

    def _base_url(self, credentials: Credentials) -> str:
        """%config, then ``ANTHROPIC_BASE_URL``, then the API's. A kernel started by the Jupyter
        server extension has its proxy there: a key of the user's own goes to the API directly,
        as it would without the extension."""
        if self.base_url:
            return str(self.base_url)
        configured = os.environ.get("ANTHROPIC_BASE_URL")
        if configured and not (credentials.api_key and configured == jupyter_proxy()):
            return configured
        return DEFAULT_BASE_URL

    def panel_settings(self) -> PanelSettings:
        """The settings as they are now, for the chat panel (which asks for them at each question)."""
        from ..ui.panel import PanelSettings

        return PanelSettings(
            model=self.model,
            max_tokens=self.max_tokens,
            system=self.system,
            temperature=self.temperature,
            effort=as_effort(self.effort),
            refresh_rate=self.refresh_rate,
            cache=self.cache,
            max_tool_rounds=self.max_tool_rounds,
            client=self.client_settings(),
            web_max_uses=self.web_max_uses,
            cite=self.cite,
        )

    # --- the kernel --------------------------------------------------------------------------

    @property
    def namespace(self) -> dict[str, Any]:
        assert self.shell is not None, "ClaudeMagics needs a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def in_notebook(self) -> bool:
        return getattr(self.shell, "kernel", None) is not None

    @property
    def in_vscode(self) -> bool:
        """VS Code's Jupyter extension runs this kernel: it names the notebook in the namespace
        (``__vsc_ipynb_file__``), and it sets ``PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING`` in every
        Python kernel it starts itself (a Jupyter server's kernels have ``JPY_SESSION_NAME``).
        ``VSCODE_PID`` is not set on Linux."""
        if "__vsc_ipynb_file__" in self.namespace:
            return True
        return "PYDEVD_IPYTHON_COMPATIBLE_DEBUGGING" in os.environ and "JPY_SESSION_NAME" not in os.environ

    def attach(self, label: str, obj: Any) -> Attachment:
        """``obj`` as an attachment, as ``-a`` makes it (the size budget, ``text/llm+plain`` formatters)."""
        from ..attach.registry import attach

        formatters = self.shell.display_formatter.formatters if self.shell and self.shell.display_formatter else {}
        return attach(label, obj, self.attachment_chars, formatters.get("text/llm+plain"))

    def kernel_side(self) -> KernelSide:
        """What the chat panel may use of the kernel: its variables, the plots cells displayed,
        and attaching an object as ``-a`` does."""
        from ..ui.panel import KernelSide

        return KernelSide(self.namespace, getattr(self.shell, "user_ns_hidden", {}), self.notebook, self.attach, self.in_vscode)

    def _notebook_path(self) -> str | None:
        return notebook_path(os.environ, self.shell.user_ns if self.shell is not None else {})

    def note_cell(self, info: Any) -> None:
        """pre_run_cell: which cell is about to run (its input is stored just after this hook)."""
        self._runs += 1
        number = running_cell_number(self.shell)
        count = number + 1 if number is not None and getattr(info, "store_history", False) else None
        self.cell = CellRun(getattr(info, "cell_id", None), count, self._runs)
