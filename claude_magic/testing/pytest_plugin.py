"""pytest fixtures for code that talks to Claude, offline.

Installed as a pytest plugin with the package: a test that takes ``stand_in`` gets a running
:class:`~claude_magic.testing.StandIn` and an environment pointing the SDK conventions at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .stand_in import StandIn

STAND_IN_KEY = "sk-ant-stand-in-test-key-0000"


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """A stand-in server; ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY`` point at it."""
    with StandIn(api_key=STAND_IN_KEY) as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", STAND_IN_KEY)
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        yield server
