"""Notebooks that move keep their conversation.

A kernel keeps its notebook's conversation under the notebook's path as Jupyter gave it
(``JPY_SESSION_NAME``: the path on disk, see :mod:`claude_magic.core.store`). The contents
service announces every rename and deletion it makes on the server's event bus (schema
:data:`CONTENTS_EVENTS`: ``action``, ``path``, ``source_path``, paths relative to the server's
root), so the extension listens there:

- a renamed or moved notebook's log goes with it (:func:`~claude_magic.core.store.move_conversation`),
  and so do the logs of the notebooks inside a renamed folder;
- a deleted notebook's log is archived, never lost (as ``%claude reset`` archives it); the logs of
  the notebooks in a deleted folder too.

Renames and deletions made outside the server (``mv`` in a terminal) send no event: those
notebooks start a conversation of their own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_server.utils import ApiPath, to_os_path

from ..core.store import ConversationStore, kept_notebooks, move_conversation

CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"


@dataclass
class ConversationMover:
    """Moves and archives conversations as the contents service renames and deletes notebooks."""

    root_dir: str
    """The server's root: contents paths are relative to it; kernels' notebook paths are under it."""
    home: Path | None = None
    """Where conversations are kept (None: the store's default, ``$CLAUDE_MAGIC_HOME``)."""
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("claude_magic.server"))

    def on_event(self, data: dict[str, Any]) -> None:
        """One contents event (blocking file work: run it off the event loop)."""
        action, path = data.get("action"), data.get("path")
        if not isinstance(path, str):
            return
        try:
            if action == "rename" and isinstance(source := data.get("source_path"), str):
                self.renamed(source, path)
            elif action == "delete":
                self.deleted(path)
        except OSError as error:
            self.log.error("claude-magic: the conversation of %s could not follow its %s: %s", path, action, error)

    def renamed(self, source_path: str, path: str) -> None:
        old, new = self.os_path(source_path), self.os_path(path)
        for before, after in self._pairs(old, new):
            if (moved := move_conversation(before, after, self.home)) is not None:
                self.log.info("claude-magic: the conversation of %s moved with it to %s (%s)", before, after, moved)

    def deleted(self, path: str) -> None:
        gone = self.os_path(path)
        archived = [notebook for notebook in [gone, *self._under(gone)] if ConversationStore(notebook, self.home).archive()]
        for notebook in archived:
            self.log.info("claude-magic: %s was deleted; its conversation is archived", notebook)

    def os_path(self, api_path: str) -> str:
        """A contents path as the kernels name their notebook (``JPY_SESSION_NAME``)."""
        return to_os_path(ApiPath(api_path), self.root_dir)

    def _pairs(self, old: str, new: str) -> list[tuple[str, str]]:
        """Each notebook's path before and after: one notebook, or each file of a renamed folder."""
        if not os.path.isdir(new):
            return [(old, new)]
        return [
            (os.path.join(old, os.path.relpath(os.path.join(folder, name), new)), os.path.join(folder, name))
            for folder, _, names in os.walk(new)
            for name in names
        ]

    def _under(self, folder: str) -> list[str]:
        """Notebooks once in a folder that is gone (their paths can't be listed any more: the logs say)."""
        if ConversationStore(folder, self.home).path.exists():  # it was a notebook, not a folder
            return []
        prefix = folder.rstrip(os.sep) + os.sep
        return [notebook for notebook in kept_notebooks(self.home) if notebook.startswith(prefix)]
