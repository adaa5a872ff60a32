"""The chat panel: an ipywidgets chat that shares the notebook's conversation.

``%claude chat`` (or ``claude_magic.chat()``) shows it under the cell. It asks through the
magic's :class:`~claude_magic.session.ClaudeSession`, so a question asked here is in the
history the next ``%%claude`` cell sends, and exchanges cells added are shown here.

The answer streams on the kernel's event loop (``ask_async`` in a task): the notebook and the
other widgets stay responsive, Stop cancels the task at once and the partial answer is kept.
Redraws are throttled like the magic's (:class:`~claude_magic.render.ThrottledDisplay`), and
the answer is shown as safe HTML (:mod:`claude_magic.markdown_html`) in an ``HTMLMath``
widget, whose math the frontend typesets. Only ipywidgets, no JavaScript of our own; the look
comes from JupyterLab's CSS variables, so it follows the light and dark themes.

An update of the answer must cost the browser the same whatever the length of the history:
the history opens scrolled to its end and stays there as the answer grows by CSS scroll
anchoring on an empty last element (``flex-direction: column-reverse`` did it by moving every
message on each update, so that all were laid out and painted again), and all but the last
:data:`RECENT_MESSAGES` messages sit in one box, which the browser lays out once.
"""

from __future__ import annotations

import asyncio
import html
import sys
from collections import Counter
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ..api.errors import ClaudeError
from ..attach.notebook import DisplayedImage
from ..attach.registry import AttachmentError, attached_labels, check_image_count, offered_as
from ..core.engine import AnswerCutOff
from ..core.session import AskOptions
from ..magics.core import explain, explain_cut_off, footer
from .render import ThrottledDisplay
from .safe_html import highlight_css, to_html

if TYPE_CHECKING:
    import ipywidgets

    from ..attach.registry import Attachment
    from ..core.conversation import Exchange
    from ..magics.core import ClaudeMagics

SCOPE = "claude-chat"
"""The panel's CSS class; every class it styles starts with it."""
PROMPT = "Ask Claude…  (Enter sends)"
WAITING = "<em>…</em>"
RECENT_MESSAGES = 20
"""Messages shown one by one at the end of the history; those before them are grouped in one
box (a flat list of them all was laid out again on each update of the answer)."""

Pick = str | DisplayedImage
"""What the attachments picker offers: a variable's name, or a plot a cell displayed."""


def open_panel(magics: ClaudeMagics, *, side: bool = False) -> ChatPanel:
    """Show a new panel under the running cell (or in JupyterLab's side area) and start
    listing the models in the background."""
    panel = ChatPanel(magics)
    _display(panel.widget, side)
    panel.start()
    return panel


def _display(widget: ipywidgets.Widget, side: bool) -> None:
    from IPython.display import display

    if side:
        try:
            from sidecar import Sidecar
        except ImportError:
            print("claude: --side needs the sidecar package (pip install sidecar); the panel is shown under the cell instead", file=sys.stderr)
        else:
            with Sidecar(title="Claude"):
                display(widget)
            return
    display(widget)


class PanelAnswer(ThrottledDisplay):
    """The panel's :class:`~claude_magic.render.Renderer`: one message, redrawn as safe HTML."""

    def __init__(self, message: ipywidgets.HTMLMath, *, refresh_rate: float) -> None:
        self.message = message
        super().__init__(self._show, refresh_rate=refresh_rate)

    def _show(self, text: str) -> None:
        self.message.value = to_html(text) or WAITING


class ChatPanel:
    """The widgets, and what their buttons do. ``widget`` is what is displayed."""

    def __init__(self, magics: ClaudeMagics) -> None:
        self._magics = magics
        self._session = magics.session
        self._task: asyncio.Task[None] | None = None
        self._models_task: asyncio.Task[None] | None = None
        self._shown: dict[int, tuple[Exchange, list[ipywidgets.Widget]]] = {}
        """The messages shown for each exchange of the conversation, by the exchange's id."""
        self._asked: list[dict[str, Any]] | None = None
        self._unrecorded: list[ipywidgets.Widget] = []
        """The messages of the question on its way (or that failed): not in the conversation."""

        self._make_controls()
        self.widget = self._layout()
        self._wire()
        self.sync_history()
        self.refresh_attachments()
        self._say(self._greeting())

    def _make_controls(self) -> None:
        import ipywidgets as w

        default = self._magics.model
        self.model = w.Dropdown(options=[default], value=default, description="Model", layout=w.Layout(width="auto")).add_class(f"{SCOPE}-model")
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

        toolbar = w.HBox([w.HTML("<b>Claude</b>"), self.model, w.Box(layout=w.Layout(flex="1")), self.new]).add_class(f"{SCOPE}-toolbar")
        rows = [
            w.HTML(_style(), layout=w.Layout(display="none")),
            toolbar,
            self.history,
            w.HBox([self.attachments, self.refresh]),
            w.HBox([self.question, self.send, self.stop]),
            self.status,
        ]
        return w.VBox(rows).add_class(SCOPE)

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
        question = [*self._session.attachment_blocks(attachments), {"type": "text", "text": text}]
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
        settings = self._magics.client_settings()
        self._say("sending…")
        try:
            answer = await self._session.ask_async(question, self._options(), settings, self._open_answer)
        except AnswerCutOff as cut:
            self._say(f"{_stopped(cut.cause)} · {footer(cut.answer)}", error=True)
        except asyncio.CancelledError:
            self._not_sent(text, "stopped before the answer started; nothing was recorded")
        except ClaudeError as error:
            self._not_sent(text, explain(error, settings))
        except Exception as error:  # a bug of ours: a line here rather than a traceback in the log
            self._not_sent(text, f"unexpected error: {type(error).__name__}: {error}")
        else:
            self._say(footer(answer))
        finally:
            self._set_busy(False)
            self.sync_history()

    def _options(self) -> AskOptions:
        magics = self._magics
        return AskOptions(
            model=str(self.model.value or magics.model),
            max_tokens=magics.max_tokens,
            system=magics.system,
            temperature=magics.temperature,
            effort=magics.effort,  # type: ignore[arg-type]  # limited to EFFORT_LEVELS
        )

    def _open_answer(self) -> PanelAnswer:
        """The answer started: its message joins the history."""
        message = _assistant_message("")
        self._unrecorded.append(message)
        self._show_messages()
        self._say("streaming…")
        return PanelAnswer(message, refresh_rate=self._magics.refresh_rate)

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
        """Fill the model picker from ``/v1/models``; on failure keep the default and say so."""
        default = self._magics.model
        settings = self._magics.client_settings()
        try:
            models = await self._session.async_client(settings).list_models()
        except ClaudeError as error:
            self._say(f"the model list is unavailable ({explain(error, settings)}); using {default}", error=True)
            return
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
                known = (exchange, self._adopt(exchange) or _exchange_messages(exchange))
            shown[id(exchange)] = known
        self._shown = shown
        self._show_messages()

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

    @property
    def _namespace(self) -> dict[str, Any]:
        assert self._magics.shell is not None, "the chat panel needs a shell"
        return self._magics.shell.user_ns  # type: ignore[no-any-return]

    def _variables(self) -> list[tuple[str, Pick]]:
        hidden = getattr(self._magics.shell, "user_ns_hidden", {})
        found = [(name, offered_as(obj)) for name, obj in list(self._namespace.items()) if not name.startswith("_") and name not in hidden]
        return [(f"{name} · {kind}", name) for name, kind in sorted(found, key=lambda pair: pair[0]) if kind]

    def _plots(self) -> list[tuple[str, Pick]]:
        """Newest first; a cell that displayed several is numbered."""
        options: list[tuple[str, Pick]] = []
        seen: Counter[int | None] = Counter()
        for image in reversed(self._magics.notebook.images):
            seen[image.execution_count] += 1
            label = f"plot displayed by cell [{image.execution_count}]"
            options.append((label if seen[image.execution_count] == 1 else f"{label} ({seen[image.execution_count]})", image))
        return options

    def _picked_attachments(self) -> list[Attachment]:
        namespace = self._namespace
        attachments = []
        for pick in self.attachments.value:
            if isinstance(pick, DisplayedImage):
                attachments.append(pick.attachment())
            elif pick in namespace:
                attachments.append(self._magics.attach(f"`{pick}`", namespace[pick]))
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


def _stopped(cause: BaseException) -> str:
    if isinstance(cause, asyncio.CancelledError):
        return "stopped; the partial answer above is kept"
    return explain_cut_off(cause)


# --- messages -------------------------------------------------------------------------------------


def _user_message(text: str, labels: list[str]) -> ipywidgets.HTML:
    import ipywidgets as w

    note = ""
    if labels:
        names = ", ".join(f"<code>{html.escape(label.strip('`'))}</code>" for label in labels)
        note = f'<div class="{SCOPE}-attached">attached: {names}</div>'
    return w.HTML(f'<div class="{SCOPE}-text">{html.escape(text)}</div>{note}').add_class(f"{SCOPE}-user")


def _assistant_message(text: str) -> ipywidgets.HTMLMath:
    import ipywidgets as w

    message = w.HTMLMath(to_html(text) or WAITING)
    return message.add_class(f"{SCOPE}-assistant").add_class("jp-RenderedHTMLCommon")


def _exchange_messages(exchange: Exchange) -> list[ipywidgets.Widget]:
    """A past exchange (perhaps from a cell): the question with its attachments' names, and the answer."""
    texts = [b.get("text", "") for b in exchange.question if b.get("type") == "text"]
    answer = "".join(b.get("text", "") for b in exchange.answer if b.get("type") == "text")
    return [_user_message(texts[-1] if texts else "", attached_labels(exchange.question[:-1])), _assistant_message(answer)]


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
{s}-assistant table {{ border-collapse: collapse; }}
{s}-assistant th, {s}-assistant td {{ border: 1px solid var(--jp-border-color2, #e0e0e0); padding: 2px 8px; }}
{s}-status {{ color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size1, 13px); }}
{s}-status{s}-error {{ color: var(--jp-error-color1, #d32f2f); }}
{highlight_css(s)}
</style>"""
