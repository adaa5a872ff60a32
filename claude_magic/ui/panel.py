"""The chat panel: an ipywidgets chat that shares the notebook's conversation.

``%claude chat`` (or ``claude_magic.chat()``) shows it under the cell. It is given the
notebook's :class:`~claude_magic.core.session.ClaudeSession`, a way to read the magic's
settings at each question (:class:`PanelSettings`) and what it may use of the kernel
(:class:`KernelSide`), never the magic itself. A question asked here goes through the same
turn engine as a cell (tools, thinking, the web, citations, the answer cache), so it is in the
history the next ``%%claude`` cell sends, and exchanges cells added are shown here; answers
show their sources (:mod:`.citations`), and searches, fetched pages and MCP calls show collapsed.

The answer streams on the kernel's event loop (``ask_async`` in a task): the notebook and the
other widgets stay responsive, Stop cancels the task at once and the partial answer is kept.
Redraws are throttled like the magic's (:class:`~claude_magic.ui.render.ThrottledDisplay`),
and the answer is shown as safe HTML (:mod:`claude_magic.ui.safe_html`) in an ``HTMLMath``
widget, whose math the frontend typesets. Only ipywidgets, no JavaScript of our own; the look
comes from JupyterLab's CSS variables, so it follows the light and dark themes.

A notebook saved with a panel keeps the conversation as text for where no widget is shown
(nbconvert's HTML and Markdown, GitHub, a notebook reopened without its kernel): a transcript
output under the panel, Markdown made safe as the cell answers are, replaced whenever the
conversation changes. It is an output of its own because updating the widget's own display
makes JupyterLab build a new view of the whole panel (``WidgetRenderer.renderModel``) while
the old one stays attached to the model: a flash, lost focus, and one more view redrawn on
every later update. Live, the panel's style hides the transcript (VS Code, which renders
Markdown outputs in a shadow root no page style reaches, shows it). The panel's own display
keeps the widget view, with a line saying what it is in place of the widget's repr.

An update of the answer must cost the browser the same whatever the length of the history:
the history opens scrolled to its end and stays there as the answer grows by CSS scroll
anchoring on an empty last element (``flex-direction: column-reverse`` did it by moving every
message on each update, so that all were laid out and painted again), and all but the last
:data:`RECENT_MESSAGES` messages sit in one box, which the browser lays out once.
"""

from __future__ import annotations

import asyncio
import html
from collections import Counter
from collections.abc import Callable, Container, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError
from ..attach.notebook import DisplayedImage, NotebookContext
from ..attach.registry import AttachmentError, attached_labels, check_image_count, offered_as
from ..core.engine import AnswerCutOff, ask_async, cited_offsets
from ..core.server_tools import web_tools
from ..core.session import AskOptions, ClaudeSession, thinking_request
from ..defaults import DEFAULT_WEB_MAX_USES
from .citations import Sources
from .render import ThrottledDisplay, answer_pieces, code_span
from .safe_html import cited_html, highlight_css
from .safe_markdown import Markup, safe_markdown
from .server_calls import panel_html
from .wording import explain, explain_cut_off, footer, waiting_line, warn

if TYPE_CHECKING:
    from collections.abc import Sequence

    import ipywidgets
    from IPython.display import DisplayHandle

    from ..api.settings import ClientSettings, Effort
    from ..attach.registry import Attachment
    from ..core.conversation import Exchange
    from ..core.server_tools import ServerCall
    from ..core.tools import ToolRun

SCOPE = "claude-chat"
"""The panel's CSS class; every class it styles starts with it."""
TRANSCRIPT = f"{SCOPE}-transcript"
"""The class of the transcript output, which the panel's style hides while it is shown."""
LABEL = "Claude chat panel"
PROMPT = "Ask Claude…  (Enter sends)"
WAITING = "<em>…</em>"
RECENT_MESSAGES = 20
"""Messages shown one by one at the end of the history; those before them are grouped in one
box (a flat list of them all was laid out again on each update of the answer)."""

Pick = str | DisplayedImage
"""What the attachments picker offers: a variable's name (a DataFrame, a picture, a document:
a ``Path`` to a PDF or text file, PDF bytes), or a plot a cell displayed."""


@dataclass(frozen=True)
class PanelSettings:
    """The magic's settings at the moment of asking (``%config`` may change them any time)."""

    model: str
    max_tokens: int
    system: str
    temperature: float | None
    effort: Effort | None
    refresh_rate: float
    cache: bool
    max_tool_rounds: int
    client: ClientSettings
    web_max_uses: int = DEFAULT_WEB_MAX_USES
    """Web: the most searches (and fetches) a request may make."""
    cite: bool = False
    """Cite's default: citations for the documents picked."""


@dataclass(frozen=True)
class KernelSide:
    """What the panel may use of the kernel."""

    namespace: dict[str, Any]
    hidden: Container[str]
    """Names IPython put in the namespace itself, not offered for attaching."""
    notebook: NotebookContext
    attach: Callable[[str, Any], Attachment]
    """Attach an object as ``-a`` does (the size budget, ``text/llm+plain`` formatters)."""
    in_vscode: bool = False
    """VS Code shows the panel: it typesets no math in widgets (vscode-jupyter #7801)."""


def open_panel(session: ClaudeSession, settings: Callable[[], PanelSettings], kernel: KernelSide, *, side: bool = False) -> ChatPanel:
    """Show a new panel under the running cell (or in JupyterLab's side area) and start
    listing the models in the background."""
    panel = ChatPanel(session, settings, kernel)
    if kernel.in_vscode and _widgets_version() in VSCODE_BLANK_WIDGETS:
        warn(
            f"VS Code shows nothing of ipywidgets {_widgets_version()} (vscode-jupyter #17504): "
            "pip install 'ipywidgets<8.1.9' and restart the kernel, or ask in %%claude cells"
        )
    _display(panel.widget, side)
    panel.show_transcript()
    panel.start()
    return panel


VSCODE_BLANK_WIDGETS = frozenset({"8.1.9"})
"""ipywidgets releases VS Code renders as nothing (vscode-jupyter #17504, open as of 2026-11)."""


def _widgets_version() -> str:
    import ipywidgets

    return str(ipywidgets.__version__)


def _display(widget: ipywidgets.Widget, side: bool) -> None:
    from IPython.display import display

    if side:
        try:
            from sidecar import Sidecar
        except ImportError:
            warn("--side needs the sidecar package (pip install sidecar); the panel is shown under the cell instead")
        else:
            with Sidecar(title="Claude"):
                display(widget)
            return
    display(widget)


class PanelAnswer(ThrottledDisplay):
    """The panel's :class:`~claude_magic.core.engine.Renderer`: one message, redrawn as safe HTML."""

    def __init__(self, message: ipywidgets.HTMLMath, *, refresh_rate: float, typeset_math: bool = True) -> None:
        self.message = message
        self._typeset_math = typeset_math
        super().__init__(self._show, refresh_rate=refresh_rate)

    def _show(self, text: str) -> None:
        self.message.value = cited_html(text, self.sources, typeset_math=self._typeset_math) or WAITING

    def waiting(self, waited: float) -> None:
        self.message.value = f"<em>{html.escape(waiting_line(waited))}</em>"


class ChatPanel:
    """The widgets, and what their buttons do. ``widget`` is what is displayed."""

    def __init__(self, session: ClaudeSession, settings: Callable[[], PanelSettings], kernel: KernelSide) -> None:
        self._session = session
        self._settings = settings
        self._kernel = kernel
        self._task: asyncio.Task[None] | None = None
        self._models_task: asyncio.Task[None] | None = None
        self._shown: dict[int, tuple[Exchange, list[ipywidgets.Widget]]] = {}
        """The messages shown for each exchange of the conversation, by the exchange's id."""
        self._asked: list[dict[str, Any]] | None = None
        self._unrecorded: list[ipywidgets.Widget] = []
        """The messages of the question on its way (or that failed): not in the conversation."""
        self._transcript: DisplayHandle | None = None
        self._transcribed: dict[str, str] = {}

        self._make_controls()
        self.widget = self._layout()
        self._wire()
        self.sync_history()
        self.refresh_attachments()
        self._say(self._greeting())

    def _make_controls(self) -> None:
        import ipywidgets as w

        default = self._settings().model
        self.model = w.Dropdown(options=[default], value=default, description="Model", layout=w.Layout(width="auto")).add_class(f"{SCOPE}-model")
        self.think = w.ToggleButton(description="Think", icon="lightbulb-o", tooltip="Let the model think first (in the form the model takes)")
        self.think.add_class(f"{SCOPE}-think")
        self.tools = w.Text(placeholder="tools: f, g", layout=w.Layout(width="12em"), tooltip="Notebook functions Claude may call")
        self.tools.add_class(f"{SCOPE}-tools")
        self.web = w.ToggleButton(description="Web", icon="globe", tooltip="Let Claude search the web and fetch pages (as --web)")
        self.web.add_class(f"{SCOPE}-web")
        self.cite = w.ToggleButton(description="Cite", icon="quote-right", value=self._settings().cite, tooltip="Citations from the documents picked (as --cite)")
        self.cite.add_class(f"{SCOPE}-cite")
        self.new = _button("New conversation", "new", icon="plus", tooltip="Forget this notebook's conversation (here and in %%claude cells)")
        self.messages = w.VBox(layout=w.Layout(width="100%")).add_class(f"{SCOPE}-messages")
        self.earlier = w.VBox(layout=w.Layout(width="100%")).add_class(f"{SCOPE}-earlier")
        self.history = w.Box([self.messages, w.Box().add_class(f"{SCOPE}-anchor")]).add_class(f"{SCOPE}-history")
        self.attachments = w.SelectMultiple(options=[], rows=3, description="Attach", layout=w.Layout(flex="1 1 auto", width="auto"))
        self.attachments.add_class(f"{SCOPE}-attachments")
        self.refresh = _button("", "refresh", icon="refresh", tooltip="Refresh the kernel's DataFrames, images and plots, and the history")
        self.question = w.Text(placeholder=PROMPT, layout=w.Layout(flex="1 1 auto", width="auto")).add_class(f"{SCOPE}-question")
        self.send = _button("Send", "send", icon="paper-plane", button_style="primary", tooltip="Send (Enter)")
        self.stop = _button("Stop", "stop", icon="stop", disabled=True, tooltip="Stop the answer; what arrived is kept")
        self.status = w.HTML().add_class(f"{SCOPE}-status")

    def _layout(self) -> ipywidgets.VBox:
        import ipywidgets as w

        spacer = w.Box(layout=w.Layout(flex="1"))
        toolbar = w.HBox([w.HTML("<b>Claude</b>"), self.model, self.think, self.web, self.cite, self.tools, spacer, self.new]).add_class(f"{SCOPE}-toolbar")
        rows = [
            w.HTML(_style(), layout=w.Layout(display="none")),
            toolbar,
            self.history,
            w.HBox([self.attachments, self.refresh]),
            w.HBox([self.question, self.send, self.stop]),
            self.status,
        ]
        return _panel_box()(rows).add_class(SCOPE)

    def _greeting(self) -> str:
        earlier = len(self._session.conversation)
        if not earlier:
            return "One conversation: %%claude cells see what is asked here, and the other way round"
        return f"{earlier} earlier exchange{'s' if earlier > 1 else ''} of this notebook's conversation {'are' if earlier > 1 else 'is'} above"

    def _wire(self) -> None:
        self.send.on_click(lambda _: self.ask(self.question.value))
        self.question.on_msg(self._on_text_message)
        self.stop.on_click(lambda _: self.stop_answer())
        self.new.on_click(lambda _: self.new_conversation())
        self.refresh.on_click(lambda _: self.refresh_all())

    def _on_text_message(self, _: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("event") == "submit":  # Enter in the question box
            self.ask(self.question.value)

    def show_transcript(self) -> None:
        """Display the transcript under the panel; the panel keeps it up to date."""
        from IPython.display import display

        self._transcribed = transcript(self._session.conversation.exchanges)
        self._transcript = display(self._transcribed, raw=True, display_id=True)

    def _update_transcript(self) -> None:
        if self._transcript is None:
            return
        latest = transcript(self._session.conversation.exchanges)
        if latest != self._transcribed:
            self._transcribed = latest
            self._transcript.update(latest, raw=True)

    def start(self) -> None:
        """List the models in the background; the picker holds the default until then."""
        self._models_task = self._in_background(self.load_models())

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- asking ----------------------------------------------------------------------------

    def ask(self, text: str) -> asyncio.Task[None] | None:
        """Send ``text`` with the picked attachments; the answer streams into the history.
        Returns the task answering (cancel it to stop), or None when nothing was sent."""
        text = text.strip()
        if not text or self.busy:
            self._say("an answer is on its way: wait for it, or press Stop" if text else "type a question first")
            return None
        try:
            attachments = self._picked_attachments()
        except ClaudeError as error:
            self._say(str(error), error=True)
            return None
        question = [*self._session.held_once([b for a in attachments for b in a.blocks()]), {"type": "text", "text": text}]
        try:
            question = self._session.cite_documents(question, self.cite.value)
        except ClaudeError as error:
            self._say(str(error), error=True)
            return None
        self.sync_history()
        self._asked, self._unrecorded = question, [_user_message(text, [a.label for a in attachments])]
        self._show_messages()
        self.question.value = ""
        self.attachments.value = ()
        self._task = self._in_background(self._answer(question, text))
        self._set_busy(True)
        return self._task

    async def _answer(self, question: list[dict[str, Any]], text: str) -> None:
        """The answer on its way; every outcome ends as one line in the status."""
        current = self._settings()
        settings = current.client
        self._say("sending…")
        try:
            options = self._options(current)
            answer = await ask_async(
                self._session, question, options, settings, lambda: self._open_answer(current), show_tool_run=self._show_tool_run, show_server_call=self._show_server_call
            )
        except AnswerCutOff as cut:
            self._say(f"{explain_cut_off(cut.cause)} · {footer(cut.answer)}", error=True)
        except asyncio.CancelledError:
            self._not_sent(text, "stopped before the answer started; nothing was recorded")
        except ClaudeError as error:
            self._not_sent(text, explain(error, settings))
        except Exception as error:  # noqa: BLE001 - a bug of ours: a line here rather than a traceback in the log
            self._not_sent(text, f"unexpected error: {type(error).__name__}: {error}")
        else:
            self._say(footer(answer))
        finally:
            self._set_busy(False)
            self.sync_history()

    def _options(self, settings: PanelSettings) -> AskOptions:
        """What the settings say, with the picked model, thinking and tools."""
        from ..core.tools import tools_named

        model = str(self.model.value or settings.model)
        thinking = None
        if self.think.value:
            thinking = thinking_request(model, self._session.model_info(model, settings.client), 0, settings.max_tokens)
        return AskOptions(
            model=model,
            max_tokens=settings.max_tokens,
            system=settings.system,
            temperature=settings.temperature,
            effort=settings.effort,
            thinking=thinking,
            tools=tools_named(self.tools.value, self._kernel.namespace),
            max_tool_rounds=settings.max_tool_rounds,
            cached=settings.cache,
            server_tools=web_tools(model, settings.web_max_uses, cite=self.cite.value) if self.web.value else (),
        )

    def _open_answer(self, settings: PanelSettings) -> PanelAnswer:
        """An answer (or a tool round's text) started: its message joins the history."""
        message = _assistant_message("", typeset_math=not self._kernel.in_vscode)
        self._unrecorded.append(message)
        self._show_messages()
        self._say("streaming…")
        return PanelAnswer(message, refresh_rate=settings.refresh_rate, typeset_math=not self._kernel.in_vscode)

    def _show_tool_run(self, run: ToolRun) -> None:
        """A tool call and its result, collapsed, among the messages as it happens."""
        self._unrecorded.append(_tool_message(run))
        self._show_messages()

    def _show_server_call(self, call: ServerCall) -> None:
        """A search, a fetched page or an MCP call the API ran, collapsed, among the messages as it happens."""
        import ipywidgets as w

        message = w.HTML(panel_html(call, typeset_math=not self._kernel.in_vscode)).add_class(f"{SCOPE}-tool")
        self._unrecorded.append(message)
        self._show_messages()

    def _not_sent(self, text: str, why: str) -> None:
        """No answer started: say why, and give the question back to edit or resend."""
        self._say(why, error=True)
        if not self.question.value:
            self.question.value = text

    def stop_answer(self) -> None:
        """Stop the answer on its way; what arrived stays, in the panel and the conversation."""
        task = self._task
        if task is not None and not task.done():
            self._say("stopping…")  # first: the task's own last word may come from another thread
            task.get_loop().call_soon_threadsafe(task.cancel)  # the click may arrive on another thread

    def new_conversation(self) -> None:
        if self.busy:
            self._say("stop the answer first", error=True)
            return
        cleared = self._session.conversation.clear()
        self._unrecorded = []
        self.sync_history()
        if cleared.failure:
            self._say(str(cleared), error=True)
            return
        where = f"; the previous one is archived in {cleared.archived}" if cleared.archived else ""
        self._say(f"new conversation: earlier questions are forgotten, here and in %%claude cells{where}")

    # --- the models ------------------------------------------------------------------------

    async def load_models(self) -> None:
        """Fill the model picker from ``/v1/models`` (and let the session know the models'
        windows and capabilities); on failure keep the default and say so."""
        current = self._settings()
        default, settings = current.model, current.client
        try:
            models = await self._session.async_client(settings).list_models()
        except ClaudeError as error:
            self._say(f"the model list is unavailable ({explain(error, settings)}); using {default}", error=True)
            return
        self._session.learn_models(models)
        ids = [m.id for m in models]
        current = self.model.value
        self.model.options = ids if default in ids else [default, *ids]
        self.model.value = current

    # --- the history -----------------------------------------------------------------------

    def sync_history(self) -> None:
        """Show the conversation as it is now: cells may have added, replaced or cleared exchanges."""
        shown: dict[int, tuple[Exchange, list[ipywidgets.Widget]]] = {}
        for exchange in self._session.conversation.exchanges:
            known = self._shown.get(id(exchange))
            if known is None or known[0] is not exchange:
                known = (exchange, self._adopt(exchange) or _exchange_messages(exchange, typeset_math=not self._kernel.in_vscode))
            shown[id(exchange)] = known
        self._shown = shown
        self._show_messages()
        self._update_transcript()

    def _adopt(self, exchange: Exchange) -> list[ipywidgets.Widget] | None:
        """The messages already shown for the question just answered, once it is recorded."""
        if self._asked is None or exchange.question != self._asked:  # equal, even if the session copied it
            return None
        adopted, self._unrecorded, self._asked = self._unrecorded, [], None
        return adopted

    def _show_messages(self) -> None:
        """The messages in the history: the earlier ones in their box, then the recent ones."""
        every = [m for _, messages in self._shown.values() for m in messages] + self._unrecorded
        earlier, recent = every[:-RECENT_MESSAGES], every[-RECENT_MESSAGES:]
        if earlier != list(self.earlier.children):
            self.earlier.children = tuple(earlier)
        children = [self.earlier, *recent] if earlier else recent
        if children != list(self.messages.children):
            self.messages.children = tuple(children)

    # --- attachments -----------------------------------------------------------------------

    def refresh_all(self) -> None:
        self.refresh_attachments()
        self.sync_history()

    def refresh_attachments(self) -> None:
        """List the kernel's DataFrames, images and figures, then the plots cells displayed;
        what was picked and is still there stays picked."""
        picked = set(self.attachments.value)
        options = self._variables() + self._plots()
        self.attachments.options = options
        self.attachments.value = tuple(value for _, value in options if value in picked)

    def _variables(self) -> list[tuple[str, Pick]]:
        hidden = self._kernel.hidden
        found = [(name, offered_as(obj)) for name, obj in list(self._kernel.namespace.items()) if not name.startswith("_") and name not in hidden]
        return [(f"{name} · {kind}", name) for name, kind in sorted(found, key=lambda pair: pair[0]) if kind]

    def _plots(self) -> list[tuple[str, Pick]]:
        """Newest first; a cell that displayed several is numbered."""
        options: list[tuple[str, Pick]] = []
        seen: Counter[int | None] = Counter()
        for image in reversed(self._kernel.notebook.images):
            seen[image.execution_count] += 1
            label = f"plot displayed by cell [{image.execution_count}]"
            options.append((label if seen[image.execution_count] == 1 else f"{label} ({seen[image.execution_count]})", image))
        return options

    def _picked_attachments(self) -> list[Attachment]:
        namespace = self._kernel.namespace
        attachments = []
        for pick in self.attachments.value:
            if isinstance(pick, DisplayedImage):
                attachments.append(pick.attachment())
            elif pick in namespace:
                attachments.append(self._kernel.attach(f"`{pick}`", namespace[pick]))
            else:
                raise AttachmentError(f"{pick} is gone from the kernel; refresh the list (↻)")
        check_image_count(attachments)
        return attachments

    # --- small things ----------------------------------------------------------------------

    def _say(self, line: str, *, error: bool = False) -> None:
        self.status.value = html.escape(line)
        (self.status.add_class if error else self.status.remove_class)(f"{SCOPE}-error")

    def _set_busy(self, busy: bool) -> None:
        self.send.disabled = busy
        self.new.disabled = busy
        self.stop.disabled = not busy

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task on the running event loop: the kernel's for a cell; for a widget callback,
        the kernel's or a subshell's (ipykernel 7 may deliver widget messages on a subshell)."""
        return asyncio.get_running_loop().create_task(work)


# --- messages -------------------------------------------------------------------------------------


def _user_message(text: str, labels: list[str]) -> ipywidgets.HTML:
    import ipywidgets as w

    note = ""
    if labels:
        names = ", ".join(f"<code>{html.escape(label.strip('`'))}</code>" for label in labels)
        note = f'<div class="{SCOPE}-attached">attached: {names}</div>'
    return w.HTML(f'<div class="{SCOPE}-text">{html.escape(text)}</div>{note}').add_class(f"{SCOPE}-user")


def _assistant_message(text: str, *, typeset_math: bool, sources: Sources | None = None) -> ipywidgets.HTMLMath:
    """An answer with its sources, styled as JupyterLab styles a cell's Markdown answer (its tables included)."""
    import ipywidgets as w

    message = w.HTMLMath(cited_html(text, sources or Sources(), typeset_math=typeset_math) or WAITING)
    return message.add_class(f"{SCOPE}-assistant").add_class("jp-RenderedHTMLCommon").add_class("jp-RenderedMarkdown")


def _tool_message(run: ToolRun) -> ipywidgets.HTML:
    """A tool call, its arguments and its result, collapsed; all of it escaped (the name and the
    arguments come from the model, the result from the user's function)."""
    import ipywidgets as w

    arguments = ", ".join(f"{k}={v!r}" for k, v in run.arguments.items())
    summary = html.escape(f"🔧 {run.name}({arguments}) → {'error' if run.is_error else 'result'}")
    return w.HTML(f"<details><summary>{summary}</summary><pre>{html.escape(run.output)}</pre></details>").add_class(f"{SCOPE}-tool")


def _exchange_messages(exchange: Exchange, *, typeset_math: bool) -> list[ipywidgets.Widget]:
    """A past exchange (perhaps from a cell): the question with its attachments' names, and the answer."""
    question, labels, answer = _texts(exchange)
    sources = Sources(cited_offsets(exchange.answer))
    return [_user_message(question, labels), _assistant_message(answer, typeset_math=typeset_math, sources=sources)]


def _texts(exchange: Exchange) -> tuple[str, list[str], str]:
    """The question's own text, its attachments' names, and the answer's text."""
    texts = [b.get("text", "") for b in exchange.question if b.get("type") == "text"]
    answer = "".join(b.get("text", "") for b in exchange.answer if b.get("type") == "text")
    return texts[-1] if texts else "", attached_labels(exchange.question[:-1]), answer


def transcript(exchanges: Sequence[Exchange]) -> dict[str, str]:
    """The conversation as the panel shows it, as safe Markdown and as plain text. Each
    question and answer sits between blank lines, so none of their blocks or math runs on."""
    pieces: list[str | Markup] = [Markup(f'<div class="{TRANSCRIPT}">\n\n**{LABEL}**\n\n')]
    plain = [LABEL]
    for exchange in exchanges:
        question, labels, answer = _texts(exchange)
        attached = f" · attached: {', '.join(code_span(label.strip('`')) for label in labels)}" if labels else ""
        pieces += [Markup(f"**You**{attached}\n\n"), *answer_pieces(question), Markup("\n\n**Claude**\n\n"), *answer_pieces(answer), Markup("\n\n")]
        plain += [f"You: {question}", f"Claude: {answer}"]
    if not exchanges:
        pieces.append(Markup("*No questions asked yet.*\n\n"))
        plain.append("No questions asked yet.")
    pieces.append(Markup("</div>"))
    return {"text/markdown": safe_markdown(*pieces), "text/plain": "\n\n".join(plain)}


@lru_cache(maxsize=1)
def _panel_box() -> type[ipywidgets.VBox]:
    """The panel's outer box: a ``VBox`` whose display, beside the widget view, says what it is
    (for a frontend that shows no widget) rather than giving its repr, style sheet and all."""
    import ipywidgets as w

    class PanelBox(w.VBox):
        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            view = super()._repr_mimebundle_(**kwargs)
            return {**view, "text/plain": LABEL, "text/markdown": f"*{LABEL}: a live view while its kernel runs; its transcript follows.*"}

    return PanelBox


def _button(label: str, name: str, **options: Any) -> ipywidgets.Button:
    import ipywidgets as w

    return w.Button(description=label, layout=w.Layout(width="auto"), **options).add_class(f"{SCOPE}-{name}")


def _style() -> str:
    """The panel's CSS: JupyterLab's variables (with fallbacks for other frontends), so it
    follows the light and dark themes."""
    s = f".{SCOPE}"
    return f"""<style>
{s} {{ border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #e0e0e0); border-radius: 6px;
  padding: 4px 8px; background: var(--jp-layout-color1, #fff); color: var(--jp-ui-font-color1, #222); max-width: 960px; }}
{s} .widget-html-content {{ line-height: var(--jp-content-line-height, 1.6); }}
{s}-history {{ display: flex; flex-direction: column; overflow-y: auto; max-height: 60vh; min-height: 6em;
  border-top: 1px solid var(--jp-border-color2, #e0e0e0); border-bottom: 1px solid var(--jp-border-color2, #e0e0e0); margin: 4px 0; }}
{s}-toolbar {{ align-items: center; }}
{s}-messages {{ flex: 0 0 auto; margin-top: auto; overflow: visible; overflow-anchor: none; padding: 6px 2px; }}
{s}-messages > * {{ contain: content; }}
{s}-anchor {{ flex: 0 0 auto; height: 1px; overflow-anchor: auto; scroll-initial-target: nearest; }}
@supports not ((overflow-anchor: auto) and (scroll-initial-target: nearest)) {{
  {s}-history {{ flex-direction: column-reverse; }}
}}
{s}-user {{ align-self: flex-end; max-width: 80%; background: var(--jp-layout-color2, #eee); border-radius: 10px; padding: 2px 12px; }}
{s}-text {{ white-space: pre-wrap; }}
{s}-attached {{ color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); }}
{s}-assistant {{ border-left: 3px solid var(--jp-brand-color1, #1976d2); padding-left: 12px; overflow-x: auto; }}
{s} {s}-assistant pre {{ background: var(--jp-layout-color2, #eee); border-radius: 4px; padding: 6px 10px; margin: 0.6em 0;
  overflow-x: auto; font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 13px); }}
{s} {s}-assistant pre code {{ background: inherit; }}
{s} {s}-assistant table {{ border-collapse: collapse; margin-left: 0; margin-right: 0; }}
{s}-assistant th, {s}-assistant td {{ border: 1px solid var(--jp-border-color2, #e0e0e0); padding: 2px 8px; }}
{s} .claude-sources {{ font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color1, #222); }}
{s}-status {{ color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size1, 13px); }}
{s}-status{s}-error {{ color: var(--jp-error-color1, #d32f2f); }}
.{TRANSCRIPT}, .jp-OutputArea-child:has(.{TRANSCRIPT}) {{ display: none; }}
{highlight_css(s)}
</style>"""
