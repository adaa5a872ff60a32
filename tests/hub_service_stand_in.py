"""A stand-in for claude-magic's Hub service, for the tests of the Hub harness itself.

Run by JupyterHub as the managed service ``claude-magic`` (``python hub_service_stand_in.py``), it
serves its prefix (``$JUPYTERHUB_SERVICE_PREFIX``) at ``$JUPYTERHUB_SERVICE_URL``. It authenticates
each request as the real service will, with JupyterHub's ``HubAuth``: the caller's token (header
``Authorization: token ...``) must belong to a user and carry the service's access scopes
(``$JUPYTERHUB_OAUTH_ACCESS_SCOPES``), else 403. A request that passes gets 200 and JSON with the
user's name, groups and the token's scopes, and whether the service holds a key (never the key):
what the harness's role and scope configuration gives, seen from the service's side.
"""

from __future__ import annotations

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubAuth

AUTH = HubAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=0)
PREFIX = os.environ["JUPYTERHUB_SERVICE_PREFIX"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if not self.path.startswith(PREFIX):
            self._answer(404, {"error": f"not under {PREFIX}"})
            return
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("token ").removeprefix("Bearer ").strip()
        user = AUTH.user_for_token(token, use_cache=False) if token else None
        if user is None:
            self._answer(403, {"error": "no user for this token"})
        elif not AUTH.check_scopes(AUTH.access_scopes, user):
            self._answer(403, {"error": f"the token lacks {sorted(AUTH.access_scopes)}"})
        else:
            body = {"name": user["name"], "groups": user.get("groups"), "scopes": user.get("scopes")}
            self._answer(200, {**body, "path": self.path, "holds_key": _holds_key()})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _holds_key() -> bool:
    """The key file the Hub's config names for the service is there, and not empty."""
    path = os.environ.get("CLAUDE_MAGIC_API_KEY_FILE")
    return bool(path) and os.path.exists(path) and bool(open(path).read().strip())


if __name__ == "__main__":
    address = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
    ThreadingHTTPServer((address.hostname or "127.0.0.1", address.port or 80), Handler).serve_forever()
