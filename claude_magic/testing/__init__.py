"""Offline testing support: the local stand-in for the Anthropic API.

``StandIn`` is the server; ``python -m claude_magic.testing`` runs it from the command line;
``claude_magic.testing.pytest_plugin`` gives a ``stand_in`` fixture.
"""

from .script import Fault, RecordedRequest, Reply
from .stand_in import StandIn

__all__ = ["Fault", "RecordedRequest", "Reply", "StandIn", "offline_unless_key"]


_notebook_stand_in: StandIn | None = None


def offline_unless_key(delay: float = 0.0) -> None:
    """For example notebooks: without ``ANTHROPIC_API_KEY``, start the stand-in in this kernel
    and point the magics at it, saying so in one line; with a key, do nothing."""
    import os

    global _notebook_stand_in
    if _notebook_stand_in is None and (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
        return
    if _notebook_stand_in is None:
        _notebook_stand_in = StandIn(delay=delay).start()
    os.environ["ANTHROPIC_BASE_URL"] = _notebook_stand_in.base_url
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-offline-stand-in"
    print("No ANTHROPIC_API_KEY is set: answers in this notebook come from claude-magic's offline stand-in.")
