"""Context from the kernel: objects described for Claude (DataFrames, images, anything else),
``{name}`` references in prompts, and what the notebook displayed (figures, recent cells, the
last error). A new kind of object is one describer: :func:`describes`.
"""

from .registry import Attachment, AttachmentError, attach, bounded, describes

__all__ = ["Attachment", "AttachmentError", "attach", "bounded", "describes"]
