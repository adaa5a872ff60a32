"""Shared test support: the recorded SSE fixtures and a tiny real loopback HTTP server.

The recorded streams live outside the repository, in ``/work/shared/fixtures/sse`` (found
relative to this file); tests that need them skip, with the reason shown, when it is absent.

``loopback`` is a real HTTP/1.1 server on 127.0.0.1 that answers every request with the
bytes a test gives it, framed as the test chooses (one ``Content-Length`` body, or chunked
transfer encoding with chunks of N bytes, optionally cut off mid-body), so the client under
test runs its real httpx path against real sockets.

``shared_stand_in`` is the plugin's ``stand_in`` made cheap: one stand-in for the session,
reset before each test (stopping a ``StandIn`` takes up to half a second).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from claude_magic.testing import StandIn
from claude_magic.testing.pytest_plugin import STAND_IN_KEY

SSE_FIXTURES_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sse"
_MISSING_FIXTURES = f"recorded SSE fixtures not found: {SSE_FIXTURES_DIR} is absent or holds no .sse file"


def sse_fixture_paths() -> list[Path]:
    return sorted(SSE_FIXTURES_DIR.glob("*.sse")) if SSE_FIXTURES_DIR.is_dir() else []


def _fixture_id(path: Path) -> str:
    """``owner-repo__rest`` without the repository prefix, e.g. ``test_messages__basic_response``."""
    return path.stem.split("__", 1)[-1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``sse_fixture`` runs once per recorded stream (a Path), or is skipped."""
    if "sse_fixture" not in metafunc.fixturenames:
        return
    paths = sse_fixture_paths()
    if paths:
        metafunc.parametrize("sse_fixture", paths, ids=[_fixture_id(p) for p in paths])
    else:
        metafunc.parametrize("sse_fixture", [pytest.param(None, marks=pytest.mark.skip(reason=_MISSING_FIXTURES))])


@pytest.fixture
def sse_fixtures_dir() -> Path:
    """The folder of recorded streams; skips the test when it is missing."""
    if not sse_fixture_paths():
        pytest.skip(_MISSING_FIXTURES)
    return SSE_FIXTURES_DIR


# --- the loopback server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What the loopback server sends back."""

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    chunk_size: int | None = None
    """``None``: one ``Content-Length`` body. N: chunked transfer encoding, N bytes a chunk."""
    cut_after: int | None = None
    """Send only this many body bytes, then shut the connection without ending the body."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Responder = Callable[[SeenRequest], "Reply | bytes"]
_WIRE_WRITE = 64 * 1024
"""Chunk frames are written in batches of about this many bytes: the HTTP chunks stay as
small as asked, without one system call per byte."""


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 that replays whatever :meth:`serve` was given."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self._respond: Responder = lambda seen: Reply(b"no reply was scripted", status=500, content_type="text/plain")
        self._options: dict[str, Any] = {}
        handler = type("Handler", (_ReplayHandler,), {"loopback": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="loopback", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, reply: Reply | Responder | bytes, **options: Any) -> None:
        """Answer every later request with ``reply``: a :class:`Reply`, body bytes, or a
        function of the request returning either; bytes get :class:`Reply` ``options``."""
        self._respond = reply if callable(reply) else (lambda seen: reply)
        self._options = options

    def _reply_for(self, seen: SeenRequest) -> Reply:
        reply = self._respond(seen)
        return Reply(reply, **self._options) if isinstance(reply, bytes) else reply

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ReplayHandler(BaseHTTPRequestHandler):
    loopback: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        url = urlsplit(self.path)
        seen = SeenRequest(
            self.command,
            url.path,
            parse_qs(url.query),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.loopback.requests.append(seen)
        reply = self.loopback._reply_for(seen)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
        if reply.chunk_size is None:
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self._write_chunked(body, reply.chunk_size, end=reply.cut_after is None)
        if reply.cut_after is not None:
            self._cut()

    def _write_chunked(self, body: bytes, size: int, *, end: bool) -> None:
        batch = bytearray()
        for start in range(0, len(body), size):
            piece = body[start : start + size]
            batch += b"%x\r\n%s\r\n" % (len(piece), piece)
            if len(batch) >= _WIRE_WRITE:
                self.wfile.write(batch)
                batch.clear()
        if end:
            batch += b"0\r\n\r\n"
        self.wfile.write(batch)

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    try:
        yield server
    finally:
        server.stop()


# --- one stand-in for the session ------------------------------------------------------------


@pytest.fixture(scope="session")
def _session_stand_in() -> Iterator[StandIn]:
    with StandIn(api_key=STAND_IN_KEY) as server:
        yield server


@pytest.fixture
def shared_stand_in(_session_stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """Like the plugin's ``stand_in`` (same key, same environment), but one server for the
    whole session with its requests and scripted faults forgotten before each test.
    Scripting by call number (``fail(on_call=...)``) counts from the session's start."""
    _session_stand_in.reset()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", _session_stand_in.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", STAND_IN_KEY)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    return _session_stand_in


@pytest.fixture
def sdk(server: StandIn) -> Iterator[Any]:
    """The official SDK, the stand-in's test client, pointed at a module's ``server`` that takes ``STAND_IN_KEY``."""
    import anthropic

    client = anthropic.Anthropic(api_key=STAND_IN_KEY, base_url=server.base_url, max_retries=0)
    yield client
    client.close()


# --- browser tests that could not run are said loudly ---------------------------------------


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Skipped browser and JupyterHub tests get a red line at the end of the run, not only an ``s``."""
    for marker in ("browser", "hub"):
        skipped = [r for r in terminalreporter.stats.get("skipped", []) if marker in getattr(r, "keywords", {})]
        if not skipped:
            continue
        longrepr = skipped[0].longrepr
        reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
        terminalreporter.write_sep("!", f"WARNING: {len(skipped)} {marker} tests were skipped: {reason}", red=True, bold=True)


# --- a real kernel with the magics loaded, against a stand-in (test modules set KEY, maybe SETUP) ---


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    """A stand-in for the module, accepting only the module's ``KEY``."""
    with StandIn(api_key=request.module.KEY) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's ``CLAUDE_MAGIC_HOME``."""
    return tmp_path_factory.mktemp("claude_magic_home")


@pytest.fixture(scope="module")
def kernel(server: StandIn, home: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A kernel with the extension loaded and the module's ``SETUP`` run. No notebook name:
    the conversation lives for the session only, so nothing carries over between modules."""
    from kernel_harness import Kernel, stand_in_environment

    with Kernel(stand_in_environment(server.base_url, request.module.KEY, home)) as k:
        assert k.run("%load_ext claude_magic").status == "ok"
        if setup := getattr(request.module, "SETUP", None):
            assert k.run(setup).status == "ok"
        yield k
