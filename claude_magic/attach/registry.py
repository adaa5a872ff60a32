"""Kernel objects as context for Claude: each attached object becomes labelled content blocks.

A small registry dispatches on the object's type: a new type is one function decorated with
:func:`describes`, from this package or any other. Objects that describe themselves to a
model (``_repr_llm_`` or a ``text/llm+plain`` formatter, the repr_llm convention) come first;
then the describers registered from outside, newest first; then the built-in ones: images,
documents (PDFs and text files, :mod:`.documents`), frames, arrays, containers, text, and a
bounded ``repr`` for anything else. Optional libraries
(pandas, polars, numpy, matplotlib, Pillow) are recognised by type name, never imported
to find out.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import media
from ..api.errors import ClaudeError
from ..defaults import DEFAULT_ATTACHMENT_CHARS
from . import documents, frames, images


class AttachmentError(ClaudeError):
    """An object that can't be attached; nothing is sent."""


@dataclass
class Attachment:
    """One attached object: its label, what it is, and the blocks that carry it."""

    label: str
    kind: str
    text: str | None = None
    image: images.PreparedImage | None = None
    document: documents.PreparedDocument | None = None

    def blocks(self) -> list[dict[str, Any]]:
        """Content blocks: an image or a document after its caption, or the text under a heading."""
        if self.image is not None:
            return [{"type": "text", "text": f"Attached image {self.label} ({self.kind}, {self.image.width}×{self.image.height} px):"}, self.image.block()]
        if self.document is not None:
            pages = f", {self.document.pages:,} pages" if self.document.pages is not None else ""
            return [{"type": "text", "text": f"Attached document {self.label} ({self.kind}{pages}):"}, self.document.block()]
        return [{"type": "text", "text": f"Attached {self.label} ({self.kind}):\n{self.text}"}]

    def size(self) -> str:
        if self.image is not None:
            return self.image.describe()
        if self.document is not None:
            return self.document.describe()
        return f"{len(self.text or ''):,} characters"

    def estimated_tokens(self) -> int:
        """A local estimate: ~4 characters a token, an image width × height / 750, a PDF page 2,000."""
        if self.image is not None:
            return max(1, self.image.width * self.image.height // 750)
        if self.document is not None:
            return self.document.estimated_tokens()
        return max(1, len(self.text or "") // 4)


Describer = Callable[[str, Any, int], Attachment]
"""``describer(label, obj, budget)``: the attachment for ``obj``, its text within ``budget`` characters."""
Applies = Callable[[Any], bool]
_REGISTERED: list[tuple[Applies, Describer]] = []
"""Describers registered from outside this module, newest first."""
_BUILT_IN: list[tuple[Applies, Describer]] = []
"""This module's own, in order: the last one takes anything."""


def describes(applies: type | tuple[type, ...] | Applies) -> Callable[[Describer], Describer]:
    """Register the decorated ``describer(label, obj, budget) -> Attachment`` for the objects
    ``applies`` accepts: a type, a tuple of types, or a test of the object. A describer
    registered later is consulted first, so a notebook or a package can take over a type::

        @claude_magic.attach.describes(Portfolio)
        def _portfolio(label, portfolio, budget):
            return Attachment(label, "portfolio", text=bounded(portfolio.summary(), budget))
    """
    test: Applies = (lambda obj: isinstance(obj, applies)) if isinstance(applies, (type, tuple)) else applies

    def register(describer: Describer) -> Describer:
        _REGISTERED.insert(0, (test, describer))
        return describer

    return register


def _built_in(applies: Applies) -> Callable[[Describer], Describer]:
    def register(describer: Describer) -> Describer:
        _BUILT_IN.append((applies, describer))
        return describer

    return register


def attach(label: str, obj: Any, budget: int = DEFAULT_ATTACHMENT_CHARS, llm_formatter: Callable[[Any], Any] | None = None) -> Attachment:
    """The attachment for ``obj``; ``llm_formatter`` is the shell's ``text/llm+plain`` formatter.

    An object that fails while being described (its own ``_repr_llm_``, or a library raising on
    it) can't be attached: one line says which and why, and nothing is sent."""
    try:
        return _describe(label, obj, budget, llm_formatter)
    except ClaudeError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the user's object raises becomes one line
        raise AttachmentError(f"can't attach {label}: describing it raised {_one_line(exc)}") from None


def _describe(label: str, obj: Any, budget: int, llm_formatter: Callable[[Any], Any] | None) -> Attachment:
    text = _self_description(label, obj, llm_formatter)
    if text is not None:
        return Attachment(label, f"{_type_name(obj)}, described by itself", text=bounded(text, budget))
    for applies, describer in [*_REGISTERED, *_BUILT_IN]:
        if applies(obj):
            return describer(label, obj, budget)
    raise AttachmentError(f"can't attach {label}")  # unreachable: the last describer takes anything


def check_image_count(attachments: list[Attachment]) -> None:
    """Refuse more images, or more PDF pages, than the API takes in one request (nothing is sent)."""
    count = sum(1 for a in attachments if a.image is not None)
    if count > media.MAX_IMAGES_PER_REQUEST:
        raise AttachmentError(f"{count} images attached; the API takes at most {media.MAX_IMAGES_PER_REQUEST} in a request")
    documents.check_totals([a.document for a in attachments if a.document is not None])


_ATTACHED = re.compile(r"^Attached (?:image |document )?(.+?)(?: \(|: the same image)")


def attached_labels(blocks: list[dict[str, Any]]) -> list[str]:
    """The labels of the attachments among a question's content blocks (as :meth:`Attachment.blocks`
    and the session write them), for showing a past question."""
    texts = (b.get("text", "") for b in blocks if b.get("type") == "text")
    return [m[1] for text in texts if (m := _ATTACHED.match(text))]


def offered_as(obj: Any) -> str | None:
    """How a picker lists ``obj`` when it is data, a picture or a document (DataFrames and Series,
    figures, images, PDFs and text files), e.g. ``pandas DataFrame 1,000×4``, ``PDF file
    report.pdf``; ``None`` for anything else."""
    if document := _offered_document(obj):
        return document
    if not (frames.is_frame(obj) or _is_picture(obj)):
        return None
    shape = getattr(obj, "shape", None)
    size = "×".join(f"{n:,}" for n in shape) if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape) else ""
    return f"{_type_name(obj)} {size}".strip()


def _offered_document(obj: Any) -> str | None:
    if documents.names_document(obj):
        path = Path(obj)
        return f"{documents.TEXT_SUFFIXES.get(path.suffix.lower(), 'PDF')} file {path.name}"
    if documents.is_pdf_bytes(obj):
        return f"PDF bytes, {len(obj):,} bytes"
    if documents.is_pdf_url(obj):
        return "PDF by URL"
    return None


def _is_picture(obj: Any) -> bool:
    if _is("matplotlib.Figure", "matplotlib.Axes", "PIL.Image", "IPython.Image")(obj):
        return True
    return _is("numpy.ndarray")(obj) and images.is_image_array(obj)


def _self_description(label: str, obj: Any, llm_formatter: Callable[[Any], Any] | None) -> str | None:
    method = getattr(type(obj), "_repr_llm_", None)
    if callable(method):
        return _said_by(label, "its _repr_llm_()", lambda: method(obj))
    if llm_formatter is not None:
        return _said_by(label, "its text/llm+plain formatter", lambda: llm_formatter(obj))
    return None


def _said_by(label: str, what: str, describe: Callable[[], Any]) -> str | None:
    """The text an object's own description gives; when that fails it is the object's failure,
    said in one line naming what raised."""
    try:
        description = describe()
    except Exception as exc:  # noqa: BLE001 - whatever the user's object raises becomes one line
        raise AttachmentError(f"can't attach {label}: {what} raised {_one_line(exc)}") from None
    return None if description is None else str(description)


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".split("\n")[0]


def _type_name(obj: Any) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return cls.__name__ if module == "builtins" else f"{module} {cls.__name__}"


def _is(*qualified_names: str) -> Callable[[Any], bool]:
    """A test for instances of classes named ``module.Class``, anywhere in the type's MRO."""
    wanted = frozenset(qualified_names)

    def applies(obj: Any) -> bool:
        return any(f"{c.__module__.split('.')[0]}.{c.__name__}" in wanted for c in type(obj).__mro__)

    return applies


def bounded(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` characters, saying how much was left out."""
    if len(text) <= budget:
        return text
    return text[:budget] + f"\n… (cut: {len(text) - budget:,} more characters not sent)"


# --- images -------------------------------------------------------------------------------------


def _names_image_file(obj: Any) -> bool:
    return isinstance(obj, (str, Path)) and Path(str(obj)).suffix.lower() in images.IMAGE_SUFFIXES and "\n" not in str(obj)


@_built_in(_names_image_file)
def _image_file(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, f"image file {Path(str(obj)).name}", image=images.from_file(obj))


@_built_in(_is("matplotlib.Figure"))
def _figure(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, "matplotlib Figure", image=images.from_figure(obj))


@_built_in(_is("matplotlib.Axes"))
def _axes(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, "matplotlib Axes, as its figure", image=images.from_figure(obj.figure))


@_built_in(_is("PIL.Image"))
def _pil_image(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, f"PIL Image, mode {obj.mode}", image=images.from_pil(obj))


@_built_in(_is("IPython.Image"))
def _ipython_image(label: str, obj: Any, budget: int) -> Attachment:
    data = obj.data if isinstance(obj.data, bytes) else None
    if data is None and getattr(obj, "filename", None):
        return Attachment(label, "IPython Image", image=images.from_file(obj.filename))
    if data is None:
        raise AttachmentError(f"{label} is an IPython Image with no image data (a URL?); embed=True makes it attachable")
    return Attachment(label, "IPython Image", image=images.from_bytes(data))


@_built_in(lambda obj: isinstance(obj, (bytes, bytearray, memoryview)) and media.sniff_media_type(bytes(obj[:16])) is not None)
def _image_bytes(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, "image bytes", image=images.from_bytes(bytes(obj)))


@_built_in(lambda obj: _is("numpy.ndarray")(obj) and images.is_image_array(obj))
def _image_array(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, f"numpy {obj.dtype} array {obj.shape}, as an image", image=images.from_array(obj))


# --- documents ----------------------------------------------------------------------------------


@_built_in(documents.names_document)
def _document_file(label: str, obj: Any, budget: int) -> Attachment:
    document = documents.from_file(obj)
    return Attachment(label, f"{document.kind} file {document.title}", document=document)


@_built_in(documents.is_pdf_bytes)
def _pdf_bytes(label: str, obj: Any, budget: int) -> Attachment:
    document = documents.from_pdf_bytes(bytes(obj), label.strip("`"))
    return Attachment(label, "PDF bytes", document=document)


@_built_in(documents.is_pdf_url)
def _pdf_url(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, "PDF by URL", document=documents.from_url(obj))


def document_named(label: str, name: str) -> Attachment | None:
    """What ``-a report.pdf`` or ``-a https://…`` attaches when no variable has that name: the
    document file, or the PDF at that address; None when ``name`` is neither."""
    if documents.is_https_url(name):
        return Attachment(label, "PDF by URL", document=documents.from_url(name))
    if documents.names_document(name):
        return _document_file(label, name, 0)
    return None


# --- data ---------------------------------------------------------------------------------------


@_built_in(frames.is_frame)
def _frame(label: str, obj: Any, budget: int) -> Attachment:
    kind, text = frames.summarise(obj, budget)
    return Attachment(label, kind, text=text)


@_built_in(_is("numpy.ndarray"))
def _array(label: str, obj: Any, budget: int) -> Attachment:
    import numpy as np

    lines = [f"shape {obj.shape}, dtype {obj.dtype}, {obj.size:,} values"]
    flat = obj.reshape(-1)
    sample = flat[:: max(1, flat.size // 1_000_000)]
    if sample.size and obj.dtype.kind in "biuf":
        with np.errstate(all="ignore"):
            values = sample.astype(np.float64)
            stats = {"min": np.nanmin(values), "max": np.nanmax(values), "mean": np.nanmean(values), "std": np.nanstd(values)}
        spread = "" if sample.size == flat.size else f" (from {sample.size:,} evenly spaced values)"
        lines.append(", ".join(f"{k} {v:.6g}" for k, v in stats.items()) + spread + f", NaN {int(np.isnan(values).sum()):,}")
    lines.append(np.array2string(obj, threshold=200, edgeitems=3, max_line_width=120))
    return Attachment(label, f"numpy array {obj.shape}", text=bounded("\n".join(lines), budget))


def _container_repr(budget: int) -> reprlib.Repr:
    limits = reprlib.Repr()
    limits.maxlevel, limits.maxdict, limits.maxlist, limits.maxtuple, limits.maxset = 4, 50, 50, 50, 50
    limits.maxstring, limits.maxother = min(2000, budget), min(2000, budget)
    return limits


@_built_in(lambda obj: isinstance(obj, (dict, list, tuple, set, frozenset)))
def _container(label: str, obj: Any, budget: int) -> Attachment:
    text = _container_repr(budget).repr(obj)
    return Attachment(label, f"{type(obj).__name__} of {len(obj):,} items", text=bounded(text, budget))


@_built_in(lambda obj: isinstance(obj, str))
def _text(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, f"text, {len(obj):,} characters", text=bounded(obj, budget))


@_built_in(lambda obj: True)
def _anything(label: str, obj: Any, budget: int) -> Attachment:
    return Attachment(label, _type_name(obj), text=bounded(_container_repr(budget).repr(obj), budget))
