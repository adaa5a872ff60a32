"""What produced an answer, kept with it: the provenance a notebook saves under each answer.

The turn engine fills a :class:`Provenance` from the request it sent and the message that came
back: the model the API answered with, the API version, the settings that shaped the answer
(max tokens, effort, thinking, temperature when sent, a hash of the system prompt, the tools
offered), the SHA-256 of the request body's bytes as the client wrote them, the attachments
(names, kinds and hashes: images by the hash of their bytes, never the bytes), usage by kind,
the estimated cost, the stop reason, the request and message ids, the time (UTC) and the
package version. The display layer saves it in the answer's output ``metadata`` under
:data:`PROVENANCE_KEY`; ``%claude why`` shows it.

It also keeps the answer's content blocks exactly as the conversation records them (thinking
with its signature, several text blocks, citations), so that an answer saved in a notebook can
be replayed (:mod:`.replay`) into the same conversation a fresh answer would have made: the
rendered Markdown beside it is a view, never read back. Credentials are never in it: nothing
here comes from the request's headers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._version import __version__

if TYPE_CHECKING:
    from ..api.protocol import MessageRequest

PROVENANCE_KEY = "claude_magic"
"""The key of an answer's output metadata that holds its provenance."""
FORMAT = 1
"""The version of the record's layout (a reader skips records of a format it does not know)."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


def utc_time(seconds: float | None = None) -> str:
    """A time from ``time.time()`` (default: now), UTC, to the second: ``2026-11-20T10:04:31Z``."""
    moment = datetime.now(timezone.utc) if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Attached:
    """One attachment of the question: its name, what it is, and the SHA-256 of what was sent
    of it (an image's bytes, as the conversation's image store names them; else its text)."""

    name: str
    kind: str
    sha256: str

    @classmethod
    def of(cls, name: str, kind: str, sent: bytes) -> Attached:
        """``sent``: the image's bytes, or the attachment's text encoded in UTF-8."""
        return cls(name, kind, hashlib.sha256(sent).hexdigest())


@dataclass(frozen=True)
class Shaping:
    """The settings of a request that shaped its answer."""

    model: str
    """The model asked for (the answer names the model that answered)."""
    max_tokens: int
    effort: str | None = None
    thinking: dict[str, Any] | None = None
    temperature: float | None = None
    """Only when it was sent."""
    system_sha256: str | None = None
    tools: tuple[str, ...] = ()

    @classmethod
    def of(cls, request: MessageRequest) -> Shaping:
        system = request.system if isinstance(request.system, str) else "".join(b.text for b in request.system or [])
        tools = (request.model_extra or {}).get("tools") or []
        return cls(
            model=request.model,
            max_tokens=request.max_tokens,
            effort=request.output_config.effort if request.output_config else None,
            thinking=request.thinking,
            temperature=request.temperature,
            system_sha256=hashlib.sha256(system.encode("utf-8")).hexdigest() if system else None,
            tools=tuple(str(tool.get("name", "")) for tool in tools if isinstance(tool, dict)),
        )

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, "effort": self.effort, "thinking": self.thinking}
        if self.temperature is not None:
            value["temperature"] = self.temperature
        return {**value, "system_sha256": self.system_sha256, "tools": list(self.tools)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Shaping:
        thinking = value.get("thinking")
        temperature = value.get("temperature")
        return cls(
            model=str(value.get("model") or ""),
            max_tokens=int(value.get("max_tokens") or 0),
            effort=_str_or_none(value.get("effort")),
            thinking=dict(thinking) if isinstance(thinking, dict) else None,
            temperature=float(temperature) if isinstance(temperature, (int, float)) else None,
            system_sha256=_str_or_none(value.get("system_sha256")),
            tools=tuple(str(name) for name in value.get("tools") or []),
        )


@dataclass(frozen=True)
class Round:
    """A later request of the same answer (a round after tool calls ran)."""

    request_sha256: str | None
    request_id: str | None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """What produced one answer (see the module's docstring)."""

    model: str
    """The model id the API answered with."""
    api_version: str
    request_sha256: str | None
    """SHA-256 of the question's request body, its bytes as sent (what replay finds it by)."""
    settings: Shaping
    usage: dict[str, Any]
    """The answer's usage by kind, as the API reported it (an answer cut off: as estimated)."""
    cost_usd: float | None
    """The estimated cost of every request the answer took (None: a model with no price)."""
    stop_reason: str | None
    request_id: str | None
    message_id: str | None
    answered_at: str
    """When the answer arrived (UTC, ISO 8601)."""
    complete: bool = True
    content: tuple[dict[str, Any], ...] = ()
    """The answer's blocks as the conversation records them."""
    attachments: tuple[Attached, ...] = ()
    tool_rounds: tuple[Round, ...] = ()
    package_version: str = __version__
    replayed_at: str | None = None
    """Set on an answer replayed from a notebook: when it was replayed."""
    cached_at: str | None = None
    """Set on an answer from the answer cache: when it was first received."""

    @property
    def text(self) -> str:
        """The answer's text: its text blocks joined (as the API's message text is)."""
        return "".join(str(b.get("text", "")) for b in self.content if b.get("type") == "text")

    @property
    def thinking(self) -> str:
        return "".join(str(b.get("thinking", "")) for b in self.content if b.get("type") == "thinking")

    def replayed(self) -> Provenance:
        """This provenance on an answer replayed now."""
        return replace(self, replayed_at=utc_time())

    def message(self) -> dict[str, Any]:
        """The complete message this answer was, as the API sent it (for replaying it)."""
        return {
            "id": self.message_id or "msg_replayed",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [dict(block) for block in self.content],
            "stop_reason": self.stop_reason,
            "usage": dict(self.usage),
        }

    def to_json(self, *, with_content: bool = True) -> dict[str, Any]:
        """The record saved in the output's metadata: plain JSON (``with_content=False``: for
        the conversation's log, which keeps the answer's blocks already)."""
        value: dict[str, Any] = {
            "format": FORMAT,
            "package_version": self.package_version,
            "answered_at": self.answered_at,
            "model": self.model,
            "api_version": self.api_version,
            "request_sha256": self.request_sha256,
            "settings": self.settings.to_json(),
            "attachments": [{"name": a.name, "kind": a.kind, "sha256": a.sha256} for a in self.attachments],
            "usage": self.usage,
            "cost_usd": self.cost_usd,
            "stop_reason": self.stop_reason,
            "request_id": self.request_id,
            "message_id": self.message_id,
            "complete": self.complete,
            **({"content": list(self.content)} if with_content else {}),
        }
        if self.tool_rounds:
            value["tool_rounds"] = [{"request_sha256": r.request_sha256, "request_id": r.request_id, "usage": r.usage} for r in self.tool_rounds]
        for name in ("replayed_at", "cached_at"):
            if getattr(self, name) is not None:
                value[name] = getattr(self, name)
        return value

    @classmethod
    def from_json(cls, value: Any) -> Provenance | None:
        """The provenance a saved record holds; None for anything else (another format, a
        record damaged or made by hand): a notebook is data, read without trusting it."""
        if not isinstance(value, Mapping) or value.get("format") != FORMAT:
            return None
        try:
            return cls._from_record(value)
        except (TypeError, ValueError, AttributeError, LookupError):
            return None

    @classmethod
    def _from_record(cls, value: Mapping[str, Any]) -> Provenance | None:
        sha = value.get("request_sha256")
        content = value.get("content")
        content = [] if content is None else content  # a record from the conversation's log
        if (sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha))) or not isinstance(content, list):
            return None
        if not all(isinstance(block, dict) and isinstance(block.get("type"), str) for block in content):
            return None
        cost = value.get("cost_usd")
        return cls(
            model=str(value.get("model") or ""),
            api_version=str(value.get("api_version") or ""),
            request_sha256=sha,
            settings=Shaping.from_json(value.get("settings") or {}),
            usage=dict(value.get("usage") or {}),
            cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
            stop_reason=_str_or_none(value.get("stop_reason")),
            request_id=_str_or_none(value.get("request_id")),
            message_id=_str_or_none(value.get("message_id")),
            answered_at=str(value.get("answered_at") or ""),
            complete=value.get("complete") is True,
            content=tuple(content),
            attachments=tuple(Attached(str(a["name"]), str(a["kind"]), str(a["sha256"])) for a in value.get("attachments") or []),
            tool_rounds=tuple(
                Round(_str_or_none(r.get("request_sha256")), _str_or_none(r.get("request_id")), dict(r.get("usage") or {}))
                for r in value.get("tool_rounds") or []
            ),
            package_version=str(value.get("package_version") or ""),
            replayed_at=_str_or_none(value.get("replayed_at")),
            cached_at=_str_or_none(value.get("cached_at")),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
