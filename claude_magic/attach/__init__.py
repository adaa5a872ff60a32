"""Context from the kernel: objects described for Claude (DataFrames, images, anything else),
``{name}`` references in prompts, and what the notebook displayed (figures, recent cells, the
last error). A new kind of object is one describer: :func:`describes`.

The names below load with the first use (PEP 562): ``%load_ext`` needs :mod:`.notebook` only, and
the describers (DataFrames, images, documents) come with the first attachment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import Attachment, AttachmentError, attach, bounded, describes

__all__ = ["Attachment", "AttachmentError", "attach", "bounded", "describes"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
