"""The notebook-wide state of asking Claude: the conversation, the clients, the budget's memory.

:class:`ClaudeSession` prepares requests (the history that fits, prompt-cache marks), is the one
place that makes HTTP clients (with an injectable transport and auth), keeps the model listing,
the answer cache and the session's usage tally. Asking goes through :mod:`.engine`, which the
magic, the chat panel and ``--compare`` share. It knows nothing of magics or widgets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError, ConfigurationError
from ..api.settings import ClientSettings, Effort
from ..defaults import DEFAULT_MAX_TOOL_ROUNDS
from .conversation import CellRun, Conversation

if TYPE_CHECKING:
    import asyncio

    import httpx

    from ..api.client import AsyncClient, Client
    from ..api.protocol import MessageRequest, ModelInfo
    from .answer_cache import AnswerCache
    from .budget import ContextWindows, Cut, Fitted
    from .pricing import Tally
    from .provenance import Provenance
    from .replay import NotebookAnswers
    from .server_tools import MCPServer
    from .tools import Tool




@dataclass(frozen=True)
class AskOptions:
    model: str
    max_tokens: int
    system: str | None = None
    temperature: float | None = None
    effort: Effort | None = None
    use_history: bool = True
    """False for a one-off that neither sends nor records history."""
    cached: bool = False
    """Answer an identical earlier request from the answer cache (and keep this answer in it)."""
    fresh: bool = False
    """With ``cached``: ask anyway, and replace the cached answer."""
    thinking: dict[str, Any] | None = None
    """The request's ``thinking`` (``{"type": "adaptive"}``, or ``enabled`` with a budget)."""
    tools: tuple[Tool, ...] = ()
    """Python functions the model may call; the tool loop runs at most ``max_tool_rounds``."""
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    """Also the most times a paused answer (``pause_turn``) is continued."""
    server_tools: tuple[dict[str, Any], ...] = ()
    """Tools the API runs itself (``--web``: web search and fetch), as the request lists them."""
    mcp_servers: tuple[MCPServer, ...] = ()
    """Remote MCP servers the API may call (``--mcp``)."""
    replay: bool = False
    """Answer a request saved in the notebook's file from there (see :mod:`.replay`)."""
    answer_schema: Mapping[str, Any] | None = None
    """A JSON schema the answer must follow (as the API takes it: see :mod:`.schemas`), sent as
    structured outputs (``output_config.format``), or with ``answer_tool`` as the input of a tool
    the model must call (``tool_choice``), for models that don't take structured outputs."""
    answer_tool: bool = False


@dataclass
class Prepared:
    """A request ready to send, and what the context budget left out of it."""

    request: MessageRequest
    fitted: Fitted
    unsure: bool = False
    """History was left out against an assumed context window: ask the server for the real one."""


class ClaudeSession:
    def __init__(
        self,
        locate: Callable[[], str | None] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._locate = locate or (lambda: None)
        self.transport, self.async_transport, self.auth = transport, async_transport, auth
        """How every client of this session sends and authenticates (see :class:`.client.Client`):
        the one place to change for a proxy that holds the key, or a test's transport."""
        self._conversation: Conversation | None = None
        self.prompt_caching = True
        """Mark the stable prefix of each request with cache_control (see :mod:`.caching`)."""
        self.context_budget: int | None = None
        """Most input tokens a request may hold; None: the model's context window less max_tokens."""
        self._windows: ContextWindows | None = None
        self._cut: Cut | None = None
        """Where the context budget last cut the history (cut there again while it fits)."""
        self._usage: Tally | None = None
        self._client: Client | None = None
        self._async_clients: dict[asyncio.AbstractEventLoop, AsyncClient] = {}
        self._answer_cache: AnswerCache | None = None
        self._models: list[ModelInfo] | None = None
        self._saved_answers: NotebookAnswers | None = None
        self.last_provenance: Provenance | None = None
        """What produced the last answer recorded (``%claude why``)."""

    @property
    def usage(self) -> Tally:
        """Tokens and cost of every answer this session (the notebook's are in its store)."""
        if self._usage is None:
            from .pricing import Tally

            self._usage = Tally()
        return self._usage

    @usage.setter
    def usage(self, tally: Tally) -> None:
        self._usage = tally

    @property
    def windows(self) -> ContextWindows:
        """The models' context windows, as the server told them (or as assumed until it has)."""
        if self._windows is None:
            from .budget import ContextWindows

            self._windows = ContextWindows()
        return self._windows

    @property
    def conversation(self) -> Conversation:
        """The notebook's conversation, restored from its store on first use."""
        if self._conversation is None:
            self._conversation = Conversation.open(self._locate())
        return self._conversation

    def client(self, settings: ClientSettings) -> Client:
        """The client for ``settings``, reused until they change. Only the session makes clients."""
        if self._client is None or self._client.settings != settings:
            from ..api.client import Client

            if self._client is not None:
                self._client.close()
            self._client = Client(settings, transport=self.transport, auth=self.auth)
        return self._client

    def async_client(self, settings: ClientSettings) -> AsyncClient:
        """The async client for ``settings`` on the running event loop, one per loop (widget
        callbacks may run on a kernel subshell's loop, ``--compare`` on a loop of its own)."""
        import asyncio  # loaded already: this runs on an event loop

        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None or client.settings != settings:
            from ..api.client import AsyncClient

            if client is not None:
                loop.create_task(client.aclose())
            client = self._async_clients[loop] = AsyncClient(settings, transport=self.async_transport, auth=self.auth)
        return client

    def job_client(self, settings: ClientSettings, wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None) -> AsyncClient:
        """A new async client of the running loop for one job, which closes it; ``wrap`` puts a
        transport of the job's own in front of the session's (pacing under the rate limits)."""
        import httpx

        from ..api.client import AsyncClient

        inner = self.async_transport or httpx.AsyncHTTPTransport()
        return AsyncClient(settings, transport=wrap(inner) if wrap is not None else self.async_transport, auth=self.auth)

    async def release_async_client(self) -> None:
        """Close the running loop's client: for a loop that is about to close."""
        import asyncio  # loaded already: this runs on an event loop

        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close every client (each async one on its own loop; a closed loop has nothing open)."""
        for loop, client in self._async_clients.items():
            if not loop.is_closed():
                import asyncio  # loaded already: there is a loop

                asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        self._async_clients.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def held_once(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A new question's blocks, each image the conversation already holds taking the text held
        there: held once in memory, and sent once (:meth:`prepare` turns later copies into a note)."""
        from .image_blocks import share_data

        known = [block for exchange in self.conversation.exchanges for block in exchange.question]
        return share_data(blocks, known)

    def cite_documents(self, question: list[dict[str, Any]], cite: bool, cell: CellRun | None = None, *, use_history: bool = True) -> list[dict[str, Any]]:
        """A new question's documents with citations as ``cite`` asks and the conversation's
        documents allow (see :mod:`.citing`; raises :class:`~.citing.CitationsError`)."""
        from .citing import with_citations

        earlier = self.conversation.refresh().messages(cell or CellRun()) if use_history else []
        return with_citations(question, cite, earlier)

    def build_request(self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None = None) -> MessageRequest:
        """The request that asking ``question`` from ``cell`` sends; changes nothing."""
        return self.prepare(question, options, cell).request

    def prepare(
        self, question: list[dict[str, Any]], options: AskOptions, cell: CellRun | None = None, steps: list[dict[str, Any]] | None = None
    ) -> Prepared:
        """The request for ``question``: the history that fits the context budget, with the
        stable prefix marked for prompt caching. The history is the notebook's as it is now
        (what other kernels recorded is picked up first). No network I/O: a context window not
        yet known is assumed (and :attr:`Prepared.unsure` says whether that mattered)."""
        from ..api.protocol import MessageRequest
        from . import caching
        from .budget import FALLBACK_CONTEXT_WINDOW, Fitted, Limit, fit_history, input_limit, measure
        from .image_blocks import drop_repeated_images

        history = self.conversation.refresh().history(cell or CellRun()) if options.use_history else []
        window = self.windows.of(options.model)
        limit = Limit(input_limit(self.context_budget, window or FALLBACK_CONTEXT_WINDOW, options.max_tokens))
        # Without history there is nothing to cut, and nothing to measure (a job over rows prepares thousands)
        fitted = fit_history(history, measure([{"role": "user", "content": question}], options.system), limit, self._cut) if history else Fitted([])
        *sent_history, sent_question = drop_repeated_images([*fitted.messages(), {"role": "user", "content": question}])
        if self.prompt_caching:
            system, messages = caching.mark(options.system, sent_history, sent_question["content"])
        else:
            system, messages = options.system or None, caching.unmarked([*sent_history, sent_question])
        request = MessageRequest.model_validate(
            {
                "model": options.model,
                "max_tokens": options.max_tokens,
                "messages": [*messages, *(steps or [])],
                "system": system,
                "temperature": options.temperature,
                "output_config": output_config(options),
                "thinking": options.thinking,
                **tools_offered(options),
            }
        )
        # Only a limit set by the assumed window (not by the budget) is worth checking with the server.
        return Prepared(request, fitted, unsure=window is None and fitted.trimmed and limit.tokens != self.context_budget)

    def model_info(self, model: str, settings: ClientSettings) -> ModelInfo | None:
        """What ``/v1/models`` says of ``model``; None if unlisted or unknown."""
        return next((m for m in self._listed_models(settings) if m.id == model), None)

    def _listed_models(self, settings: ClientSettings) -> list[ModelInfo]:
        """The server's models, asked for once a session (for context windows and capabilities
        alike); empty when it can't list them."""
        if self._models is None:
            self.learn_models(listed_or_none(self.client(settings).list_models))
        return self._models or []

    def learn_models(self, models: list[ModelInfo] | None) -> None:
        """Keep the server's model listing (None: it could not list them; assume from now on)."""
        self._models = models or []
        self.windows.learn(models)

    @property
    def models_known(self) -> bool:
        return self._models is not None

    def note_sent(self, prepared: Prepared, options: AskOptions) -> None:
        """Remember where the history was cut, to cut it there next time (the cache's prefix)."""
        if options.use_history:
            self._cut = prepared.fitted.cut

    def tally(self, model: str, usage: dict[str, Any], *, log: bool) -> None:
        """Count a request's tokens in this session; ``log``: in the notebook's log too (a
        request no recorded exchange carries: a tool round, a one-off, a compared answer)."""
        self.usage.add(model, usage)
        if log:
            self.conversation.note_usage(model, usage)

    def saved_answer(self, request_sha256: str) -> Provenance | None:
        """The answer this notebook's file saved for the request with this SHA-256, if any."""
        saved = self.saved_answers()
        return saved.find(request_sha256) if saved is not None else None

    def why_not_replayed(self) -> str:
        """Why the last question was not answered from the notebook's saved outputs."""
        saved = self.saved_answers()
        if saved is None:
            return "no saved answer could be replayed: the kernel was not told which notebook it runs"
        return saved.why_none()

    def saved_answers(self) -> NotebookAnswers | None:
        """The answers saved in this kernel's notebook file (None: no notebook is known)."""
        path = self._locate()
        if path is None:
            return None
        if self._saved_answers is None or str(self._saved_answers.path) != os.path.abspath(path):
            from .replay import NotebookAnswers

            self._saved_answers = NotebookAnswers(path)
        return self._saved_answers

    @property
    def answer_cache(self) -> AnswerCache:
        if self._answer_cache is None:
            from .answer_cache import AnswerCache

            self._answer_cache = AnswerCache()
        return self._answer_cache


ANSWER_TOOL = "answer"
"""The tool a model that doesn't take structured outputs is made to call with its answer."""


def output_config(options: AskOptions) -> dict[str, Any] | None:
    """The request's ``output_config``: the effort, and the answer's schema as structured outputs."""
    config: dict[str, Any] = {"effort": options.effort} if options.effort else {}
    if options.answer_schema is not None and not options.answer_tool:
        config["format"] = {"type": "json_schema", "schema": dict(options.answer_schema)}
    return config or None


def tools_offered(options: AskOptions) -> dict[str, Any]:
    """The request's ``tools`` (notebook functions, the API's own tools, each MCP server's
    toolset, and the answer's tool), ``tool_choice`` and ``mcp_servers``, those it has."""
    tools = [tool.definition() for tool in options.tools] + list(options.server_tools) + [s.toolset() for s in options.mcp_servers]
    servers = {"mcp_servers": [server.definition() for server in options.mcp_servers]} if options.mcp_servers else {}
    if options.answer_schema is None or not options.answer_tool:
        return {**({"tools": tools} if tools else {}), **servers}
    answer = {"name": ANSWER_TOOL, "description": "Give your answer, in this form.", "input_schema": dict(options.answer_schema)}
    return {"tools": [*tools, answer], "tool_choice": {"type": "tool", "name": ANSWER_TOOL}, **servers}


def thinking_request(model: str, info: ModelInfo | None, budget: int, max_tokens: int) -> dict[str, Any]:
    """The ``thinking`` a model takes: adaptive where it can (``budget`` 0), a budget where it
    takes one. Unknown capabilities: send what was asked and let the API say."""
    types = ((info.model_extra or {}).get("capabilities") or {}).get("thinking", {}).get("types", {}) if info else {}
    adaptive, enabled = (bool(types.get(kind, {}).get("supported")) for kind in ("adaptive", "enabled"))
    if budget == 0:
        if enabled and not adaptive:
            return {"type": "enabled", "budget_tokens": max(1024, min(max_tokens // 2, 8192))}
        return {"type": "adaptive"}
    if adaptive and not enabled:
        raise ConfigurationError(f"{model} thinks adaptively and takes no budget: use --think without N, and --effort to steer it")
    if not 1024 <= budget < max_tokens:
        raise ConfigurationError(f"--think {budget}: a thinking budget is at least 1024 tokens and less than --max-tokens ({max_tokens})")
    return {"type": "enabled", "budget_tokens": budget}


def listed_or_none(list_models: Callable[[], list[ModelInfo]]) -> list[ModelInfo] | None:
    """The server's models, or None when it can't list them (a proxy, a stand-in, an outage)."""
    try:
        return list_models()
    except ClaudeError:
        return None
