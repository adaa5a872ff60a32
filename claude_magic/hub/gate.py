"""Who a request to the Hub service is for: the Hub's own answer about its token.

A caller presents a JupyterHub token (``Authorization: token …`` or ``Bearer …``): a user's server
sends its own ``JUPYTERHUB_API_TOKEN``, which names its user. ``HubAuth.user_for_token`` asks the
Hub (and keeps its answer for ``HubAuth.cache_max_age`` seconds, so a revoked token stops working
within that time); the token must belong to a user (not a service) and carry the scope to use this
service (``access:services!service=<name>``, the Hub's ``HubAuth.access_scopes``). The user's
groups choose their :class:`~claude_magic.server.policy.Policy`; the kernel the request comes from
(the header the user's server adds) is the unit of fairness within the user's share.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tornado.httputil import HTTPServerRequest

from ..api.redaction import scrub
from ..server.policy import GroupPolicies
from ..server.proxy import CLIENT_HEADER, NOTEBOOK_HEADER, Caller, Refused

HUB_TOKEN = re.compile(r"(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
"""The ``Authorization`` header JupyterHub's own clients send (its ``HubAuth.auth_header_pat``)."""
DIRECT = "direct"
"""The client of a request that named no kernel (a script with a user's token, not a server)."""
MAX_NAME = 200


def hub_token(headers: Mapping[str, str]) -> str | None:
    match = HUB_TOKEN.match(headers.get("Authorization") or "")
    return match.group(1) if match else None


@dataclass
class HubGate:
    """The Hub service's gate (a :class:`~claude_magic.server.proxy.Gate`)."""

    auth: Any
    """A ``jupyterhub.services.auth.HubAuth`` (``HubOAuth``): the Hub's answers about tokens."""
    policies: GroupPolicies
    log: logging.Logger

    async def admit(self, request: HTTPServerRequest) -> Caller:
        model = await self.identify(hub_token(request.headers))
        user = str(model["name"])
        client = _name(request.headers.get(CLIENT_HEADER)) or DIRECT
        notebook = _name(unquote(request.headers.get(NOTEBOOK_HEADER) or ""))
        return Caller(client, user, notebook, self.policies.for_user(model.get("groups") or ()))

    async def identify(self, token: str | None) -> dict[str, Any]:
        """The Hub's model of a token's user, or the :class:`Refused` that says why not."""
        if token is None:
            raise Refused(
                401,
                "this JupyterHub service takes a Hub token (Authorization: token <token>), as a user's server sends",
            )
        try:
            model = await self.auth.user_for_token(token, sync=False)
        except Exception as error:  # noqa: BLE001 - the Hub is down or refuses us: say so, never a traceback
            self.log.warning("claude-magic: the Hub could not check a token: %s", error)
            raise Refused(
                502, "the Hub could not be asked whose token this is; try again shortly", error_type="api_error"
            ) from None
        if not model:
            raise Refused(401, "the Hub knows no such token (revoked, expired or never made)")
        if model.get("kind", "user") != "user":
            raise Refused(403, f"only a Hub user's token can ask Claude here, not a {model.get('kind')}'s")
        if not self.auth.check_scopes(self.auth.access_scopes, model):
            needed = " or ".join(sorted(self.auth.access_scopes, key=len, reverse=True))  # the service's own first
            raise Refused(
                403,
                f"this token lacks the scope {needed}: ask the Hub's admin to grant it to your server's token or your role",
            )
        return dict(model)


def _name(value: str | None) -> str | None:
    """A kernel id or notebook path from a header: scrubbed and bounded, as the ledger keeps text."""
    return scrub(value.strip())[:MAX_NAME] if value and value.strip() else None
