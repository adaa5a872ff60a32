"""A local stand-in for the Anthropic API: a real HTTP/1.1 server on 127.0.0.1.

It speaks the Messages API's protocol (SSE streams, the error envelope with its status codes,
``request-id``, ``retry-after``, ``x-should-retry``), applies the validation rules users meet,
answers deterministically from the request (within its ``max_tokens``, ``stop_sequences`` and
``tool_choice``), records every request it receives, and can be scripted to fail: an error
status on a given call of any route, an ``error`` event or a dropped connection mid-stream,
slow tokens.

    with StandIn() as server:
        os.environ["ANTHROPIC_BASE_URL"] = server.base_url
        ...
        assert server.requests[-1].body["model"] == "claude-sonnet-5-5"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .handler import Handler, Server
from .script import Script

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass
class StandIn(Script):
    """The stand-in server. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    host: str = "127.0.0.1"
    port: int = 0
    _server: Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        handler = type("Handler", (Handler,), {"stand_in": self})
        self._server = Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="claude-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
