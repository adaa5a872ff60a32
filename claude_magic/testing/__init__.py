"""Offline testing support: the local stand-in for the Anthropic API.

``StandIn`` is the server; ``python -m claude_magic.testing`` runs it from the command line;
``claude_magic.testing.pytest_plugin`` gives a ``stand_in`` fixture.
"""

from .server import Fault, RecordedRequest, StandIn

__all__ = ["Fault", "RecordedRequest", "StandIn"]
