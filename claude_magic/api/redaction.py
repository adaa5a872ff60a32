"""Credentials never reach a file or a preview: one scrub for every text kept or shown.

The credentials in use are known here, in one place: every client registers those it was made
with (:func:`remember`), and a key once used stays redacted for the rest of the process, even
after it is replaced. :func:`scrub` takes them out of a text, together with anything shaped like
an Anthropic key (one a user pasted, one a server echoed). Whatever is persisted or previewed
goes through it: the conversation's log lines, the answer cache's files and exports as JSON
text (:func:`dumps`), Markdown exports and ``%claude history`` previews as plain text, so a new
kind of file can't have secrets of its own to forget.

JSON text is scrubbed as text: a secret is looked for both as it is and as JSON escapes it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any

from .errors import redact

KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
"""Anything shaped like an Anthropic key, redacted even when nobody said it is one."""

_in_use: set[str] = set()
_guard = threading.Lock()


def remember(secrets: Iterable[str]) -> None:
    """Keep these credentials out of every later :func:`scrub` (for the rest of the process)."""
    with _guard:
        for secret in secrets:
            if secret:
                _in_use.update({secret, json.dumps(secret, ensure_ascii=False)[1:-1]})


def remembered() -> tuple[str, ...]:
    """The secrets :func:`remember` was given (as they are, and as JSON escapes them)."""
    with _guard:
        return tuple(_in_use)


def scrub(text: str) -> str:
    """``text`` without the credentials in use, nor anything shaped like an Anthropic key."""
    with _guard:
        secrets = sorted(_in_use, key=len, reverse=True)  # a longer secret before one it contains
    return KEY_SHAPE.sub("sk-ant-***", redact(text, secrets))


def dumps(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON text, scrubbed (compact unless ``indent`` is given; non-ASCII kept)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return scrub(json.dumps(value, ensure_ascii=False, indent=indent, separators=separators))
