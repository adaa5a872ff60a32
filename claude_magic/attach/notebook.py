"""What the notebook showed and did, kept for ``--fig``, ``--recent`` and ``--error``.

Images are captured as they are published (``image/png`` / ``image/jpeg`` outputs): the
inline backend closes a figure once it is shown, so by the next cell ``plt.gcf()`` is empty.
Only the last :data:`KEPT_IMAGES` images stay in memory. The last exception is taken from
``post_run_cell``, skipping this package's own one-line errors.
"""

from __future__ import annotations

import base64
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import Attachment

KEPT_IMAGES = 20
SHORT_OUTPUT = 500
"""Characters of a cell's output shown with ``--recent``."""


def running_cell_number(shell: Any) -> int | None:
    """The execution count of the cell running now. IPython stores a cell's input before
    running it (but after ``pre_run_cell``), and moves ``execution_count`` at the start (9.x)
    or at the end (8.x) of the cell, so the stored inputs are what can be relied on."""
    history = getattr(shell, "history_manager", None)
    return len(history.input_hist_parsed) - 1 if history is not None else getattr(shell, "execution_count", None)


@dataclass(frozen=True)
class DisplayedImage:
    run: int
    """Which cell run displayed it (runs are counted even when the history isn't kept)."""
    execution_count: int | None
    media_type: str
    data: bytes

    def attachment(self) -> Attachment:
        from .images import from_bytes
        from .registry import Attachment

        return Attachment(f"displayed by cell [{self.execution_count}]", "plot", image=from_bytes(self.data))


class NotebookContext:
    def __init__(self, is_own_error: Callable[[BaseException], bool]) -> None:
        self.images: deque[DisplayedImage] = deque(maxlen=KEPT_IMAGES)
        self.last_error: tuple[int | None, str, BaseException] | None = None
        self._is_own_error = is_own_error
        self._shell: Any = None
        self._run = 0

    # --- hooks ---------------------------------------------------------------------------------

    def install(self, shell: Any) -> None:
        self._shell = shell
        shell.events.register("pre_run_cell", self._note_run)
        shell.events.register("post_run_cell", self._note_result)
        for publisher in self._publishers():
            publisher.register_hook(self._capture)

    def uninstall(self) -> None:
        if self._shell is None:
            return
        for event, callback in (("pre_run_cell", self._note_run), ("post_run_cell", self._note_result)):
            if callback in self._shell.events.callbacks[event]:
                self._shell.events.unregister(event, callback)
        for publisher in self._publishers():
            publisher.unregister_hook(self._capture)

    def _publishers(self) -> list[Any]:
        """ipykernel's display publisher and display hook take message hooks; a terminal has none."""
        candidates = (getattr(self._shell, "display_pub", None), getattr(self._shell, "displayhook", None))
        return [p for p in candidates if hasattr(p, "register_hook") and hasattr(p, "unregister_hook")]

    def _capture(self, message: dict[str, Any]) -> dict[str, Any]:
        data = message.get("content", {}).get("data", {})
        for media_type in ("image/png", "image/jpeg"):
            if media_type in data:
                encoded = data[media_type]
                raw = base64.b64decode(encoded) if isinstance(encoded, str) else bytes(encoded)
                self.images.append(DisplayedImage(self._run, running_cell_number(self._shell), media_type, raw))
                break
        return message

    def _note_run(self, info: Any) -> None:
        self._run += 1

    def _note_result(self, result: Any) -> None:
        error = getattr(result, "error_in_exec", None)
        if error is not None and not self._is_own_error(error):
            info = getattr(result, "info", None)
            self.last_error = (getattr(result, "execution_count", None), getattr(info, "raw_cell", "") or "", error)

    # --- attachments -------------------------------------------------------------------------

    def figures(self, execution_count: int | None) -> list[Attachment]:
        """The most recent displayed image, or every image cell ``execution_count`` displayed."""
        from .registry import AttachmentError

        earlier = [i for i in self.images if i.run != self._run]
        if execution_count is None:
            chosen = earlier[-1:]
            if not chosen:
                raise AttachmentError("--fig: no earlier cell displayed an image yet (plots are captured from the cell after %load_ext claude_magic)")
        else:
            chosen = [i for i in earlier if i.execution_count == execution_count]
            if not chosen:
                kept = sorted({i.execution_count for i in earlier if i.execution_count is not None})
                raise AttachmentError(f"--fig {execution_count}: no image from cell [{execution_count}] is kept (cells with images: {kept or 'none'})")
        return [i.attachment() for i in chosen]

    def recent_cells(self, count: int, budget: int) -> Attachment:
        """The source of the last ``count`` executed cells, each with its short text output."""
        from .registry import Attachment, AttachmentError, bounded

        shell = self._shell
        inputs, outputs = shell.history_manager.input_hist_raw, shell.history_manager.output_hist
        last = (running_cell_number(shell) or 0) - 1
        numbers = [n for n in range(max(1, last - count + 1), last + 1) if n < len(inputs)]
        if not numbers:
            raise AttachmentError("--recent: no cell has run before this one")
        parts = []
        for number in numbers:
            part = f"In [{number}]:\n{inputs[number]}"
            if number in outputs:
                part += f"\nOut[{number}]: {bounded(repr(outputs[number]), SHORT_OUTPUT)}"
            parts.append(part)
        return Attachment(f"the last {len(numbers)} cells", "notebook cells", text=bounded("\n\n".join(parts), budget))

    def error(self, budget: int) -> Attachment:
        from .registry import Attachment, AttachmentError, bounded

        if self.last_error is None:
            raise AttachmentError("--error: no cell has raised an exception in this kernel yet")
        count, source, error = self.last_error
        trace = "".join(traceback.format_exception(type(error), error, _user_frames(error.__traceback__)))
        text = f"Cell [{count}]:\n{source}\n\nraised:\n{trace}"
        return Attachment(f"the last error, {type(error).__name__}", "exception", text=bounded(text, budget))


def _user_frames(trace: Any) -> Any:
    """The traceback from the user's code on: IPython's own frames that ran the cell are dropped."""
    while trace is not None and str(trace.tb_frame.f_globals.get("__name__", "")).startswith("IPython."):
        trace = trace.tb_next
    return trace
