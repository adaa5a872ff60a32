"""The API's validation rules, as the stand-in applies them: what a real request must satisfy
(authentication, versions, models, ``max_tokens``, messages and their blocks, tool use, thinking,
prompt-cache marks, images, documents: see :mod:`.documents`), each failing with the API's own
status and message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..api import pdf
from ..api.media import IMAGE_MEDIA_TYPES, sniff_media_type
from ..api.settings import API_VERSIONS, SAMPLING_PARAMETERS, accepts_sampling_parameters
from .cache import MAX_BREAKPOINTS, breakpoints
from .models import DEFAULT_SAMPLING_ONLY, MODELS
from .server_tools import WEB_FETCH_TOOLS, WEB_SEARCH_TOOLS, check_sent_back

STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class APIFailure(Exception):
    """Raised by validation: becomes the API's error envelope."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or STATUS_ERROR_TYPES.get(status, "api_error")


def check_auth(headers: dict[str, str], api_key: str | None) -> None:
    """A key (any, or ``api_key`` when one is set) and a version the API knows."""
    key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    supplied = key or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
    if not supplied:
        raise APIFailure(401, "x-api-key header is required")
    if api_key is not None and supplied != api_key:
        raise APIFailure(401, "invalid x-api-key")
    version = headers.get("anthropic-version")
    if not version:
        raise APIFailure(400, "anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise APIFailure(400, f"anthropic-version: unknown version '{version}'")


def validate_message_body(body: Any, version: str, models: list[dict[str, Any]], *, counting: bool = False, betas: str = "") -> dict[str, Any]:
    """The catalogue entry of the model a valid body names; an :class:`APIFailure` for an invalid one."""
    if not isinstance(body, dict):
        raise APIFailure(400, "the request body must be a JSON object")
    required = ("model", "messages") if counting else ("model", "max_tokens", "messages")
    for name in required:
        if name not in body:
            raise APIFailure(400, f"{name}: Field required")
    if not accepts_sampling_parameters(version):
        for name in SAMPLING_PARAMETERS:
            if name in body:
                raise APIFailure(400, f"{name}: Extra inputs are not permitted")
    model = resolve_model(body["model"], models)
    if model is None:
        raise APIFailure(404, f"model: {body['model']}")
    if model["id"] in DEFAULT_SAMPLING_ONLY:
        _check_default_sampling(body, model["id"])
    if not counting:
        _check_max_tokens(body["max_tokens"], model)
        _check_stop_sequences(body.get("stop_sequences"))
    _check_messages(body["messages"])
    if not accepts_sampling_parameters(version):  # the same version, 2026-10-21, tightened these too
        check_roles_under_2026_10_21(body["messages"])
    _check_cache_control(body)
    _check_thinking(body, model)
    _check_tool_choice(body)
    _check_server_tools(body, model)
    _check_mcp_servers(body, betas)
    if (changed := check_sent_back(body["messages"])) is not None:
        raise APIFailure(400, changed)
    return model


def _check_thinking(body: dict[str, Any], model: dict[str, Any]) -> None:
    """The thinking modes the model's capabilities allow, and thinking blocks sent back whole."""
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        supported = model["capabilities"]["thinking"]["types"]
        if kind in ("adaptive", "enabled") and not supported.get(kind, {}).get("supported"):
            other = "adaptive" if kind == "enabled" else "enabled"
            raise APIFailure(400, f"thinking.type: '{kind}' is not supported for {model['id']}; use '{other}'")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024 or budget >= body.get("max_tokens", 0):
                raise APIFailure(400, "thinking.budget_tokens: must be at least 1024 and less than max_tokens")
    for i, message in enumerate(body["messages"]):
        for j, block in enumerate(message.get("content") if isinstance(message.get("content"), list) else []):
            if isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature"):
                raise APIFailure(400, f"messages.{i}.content.{j}.thinking.signature: Field required")


_TOOL_CHOICE_FIELDS = {
    "auto": {"type", "disable_parallel_tool_use"},
    "any": {"type", "disable_parallel_tool_use"},
    "tool": {"type", "name", "disable_parallel_tool_use"},
    "none": {"type"},
}


def _check_tool_choice(body: dict[str, Any]) -> None:
    """A known choice with only its own fields, given with tools, naming one of them, and
    forcing no call while thinking is on."""
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in _TOOL_CHOICE_FIELDS:
        raise APIFailure(
            400,
            f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            "'auto', 'any', 'tool', 'none'",
        )
    if extra := sorted(choice.keys() - _TOOL_CHOICE_FIELDS[kind]):
        raise APIFailure(400, f"tool_choice.{kind}.{extra[0]}: Extra inputs are not permitted")
    if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
        raise APIFailure(400, f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean")
    tools = body.get("tools") or []
    if not tools:
        raise APIFailure(400, f"tool_choice.{kind} may only be specified while providing tools")
    if kind == "tool":
        if "name" not in choice:
            raise APIFailure(400, "tool_choice.tool.name: Field required")
        if choice["name"] not in {tool.get("name") for tool in tools if isinstance(tool, dict)}:
            raise APIFailure(400, f"tool_choice.tool.name: no tool named '{choice['name']}' in tools")
    thinking = body.get("thinking")
    if kind in ("any", "tool") and isinstance(thinking, dict) and thinking.get("type") in ("adaptive", "enabled"):
        raise APIFailure(400, "Thinking may not be enabled when tool_choice forces tool use.")


def _check_stop_sequences(stop_sequences: Any) -> None:
    if stop_sequences is None:
        return
    if not isinstance(stop_sequences, list):
        raise APIFailure(400, "stop_sequences: Input should be a valid list")
    for i, sequence in enumerate(stop_sequences):
        if not isinstance(sequence, str):
            raise APIFailure(400, f"stop_sequences.{i}: Input should be a valid string")
        if not sequence:
            raise APIFailure(400, "stop_sequences: each stop sequence must be non-empty")
        if not sequence.strip():
            raise APIFailure(400, "stop_sequences: each stop sequence must contain non-whitespace")


def _answers_tool_results(body: dict[str, Any]) -> bool:
    last = body["messages"][-1].get("content")
    return isinstance(last, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in last)


def resolve_model(model_id: Any, catalogue: list[dict[str, Any]] = MODELS) -> dict[str, Any] | None:
    """The catalogue entry for an id or a dated snapshot of it (``claude-haiku-4-5-20251001``)."""
    for model in catalogue:
        if model_id == model["id"] or (isinstance(model_id, str) and model_id.startswith(model["id"] + "-20")):
            return model
    return None


def _check_default_sampling(body: dict[str, Any], model_id: str) -> None:
    if body.get("temperature", 1.0) != 1.0:
        raise APIFailure(400, f"temperature: {model_id} only supports the default temperature (1.0); remove it from the request")
    for name in ("top_p", "top_k"):
        if name in body:
            raise APIFailure(400, f"{name}: {model_id} does not support {name}; remove it from the request")


def _check_max_tokens(max_tokens: Any, model: dict[str, Any]) -> None:
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise APIFailure(400, "max_tokens: Input should be a valid non-negative integer")
    if max_tokens > model["max_tokens"]:
        raise APIFailure(
            400,
            f"max_tokens: {max_tokens} > {model['max_tokens']}, which is the maximum allowed number of output tokens for {model['id']}",
        )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise APIFailure(400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise APIFailure(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise APIFailure(400, f"messages.{i}.content: Input should be a valid string or list")
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "image":
                _check_image(block, f"messages.{i}.content.{j}")
            elif isinstance(block, dict) and block.get("type") == "document":
                check_document(block, f"messages.{i}.content.{j}")
    if messages[0].get("role") != "user":
        raise APIFailure(400, "messages: the first message must use the user role")
    _check_tool_results(messages)
    check_documents_together(messages)


def _check_tool_results(messages: list[dict[str, Any]]) -> None:
    """Every ``tool_use`` of an assistant turn is answered by a ``tool_result`` in the next message."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if message.get("role") != "assistant" or not isinstance(content, list):
            continue
        calls = [b.get("id") for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        following = messages[i + 1].get("content") if i + 1 < len(messages) else None
        answered = {b.get("tool_use_id") for b in following if isinstance(b, dict) and b.get("type") == "tool_result"} if isinstance(following, list) else set()
        unanswered = [str(call) for call in calls if call not in answered]
        if unanswered:
            raise APIFailure(
                400,
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(unanswered)}. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )


def _check_cache_control(body: dict[str, Any]) -> None:
    found = breakpoints(body)
    if found > MAX_BREAKPOINTS:
        raise APIFailure(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}.")
    for i, message in enumerate(body["messages"]):
        for j, block in enumerate(message["content"] if isinstance(message["content"], list) else []):
            marker = block.get("cache_control") if isinstance(block, dict) else None
            if marker is None:
                continue
            if block.get("type") in ("thinking", "redacted_thinking"):
                raise APIFailure(400, f"messages.{i}.content.{j}.{block['type']}.cache_control: Extra inputs are not permitted")
            if not isinstance(marker, dict) or marker.get("type") != "ephemeral" or marker.get("ttl", "5m") not in ("5m", "1h"):
                raise APIFailure(400, f"messages.{i}.content.{j}.cache_control: Input should be {{'type': 'ephemeral'}} with ttl '5m' or '1h'")


def _check_image(block: dict[str, Any], where: str) -> None:
    source = block.get("source") or {}
    if source.get("type") != "base64":
        return
    media_type = source.get("media_type")
    if media_type not in IMAGE_MEDIA_TYPES:
        raise APIFailure(
            400,
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        )
    try:
        head = base64.b64decode(str(source.get("data", ""))[:64] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise APIFailure(400, f"{where}.image.source.base64.data: invalid base64 data") from None
    if sniff_media_type(head) != media_type:
        raise APIFailure(400, f"{where}.image.source.base64: The image was specified using the {media_type} media type, but the image data does not match it")


# --- documents --------------------------------------------------------------------------------

_DOCUMENT_SOURCES = {"base64": pdf.PDF_MEDIA_TYPE, "text": pdf.TEXT_MEDIA_TYPE, "url": None, "content": None}


def check_document(block: dict[str, Any], where: str) -> None:
    """A document block: a PDF (base64, standard, at most 100 pages), plain text, a URL or
    custom content; a ``citations`` setting that is ``{"enabled": bool}``; a string title."""
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "file":
        raise APIFailure(400, f"{where}.document.source.file: file sources need the Files API, which this stand-in does not serve")
    if kind not in _DOCUMENT_SOURCES or not isinstance(source, dict):
        raise APIFailure(400, f"{where}.document.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'base64', 'text', 'url', 'content', 'file'")
    media_type = _DOCUMENT_SOURCES[kind]
    if media_type is not None and source.get("media_type") != media_type:
        raise APIFailure(400, f"{where}.document.source.{kind}.media_type: Input should be '{media_type}'")
    if kind == "base64":
        _check_pdf(str(source.get("data", "")), where)
    elif kind == "text" and not isinstance(source.get("data"), str):
        raise APIFailure(400, f"{where}.document.source.text.data: Input should be a valid string")
    elif kind == "url" and not str(source.get("url", "")).startswith(("https://", "http://")):
        raise APIFailure(400, f"{where}.document.source.url.url: Input should be a valid URL")
    citations = block.get("citations")
    if citations is not None and not (isinstance(citations, dict) and isinstance(citations.get("enabled"), bool) and citations.keys() <= {"enabled"}):
        raise APIFailure(400, f"{where}.document.citations: Input should be an object with a boolean 'enabled'")
    if block.get("title") is not None and not isinstance(block.get("title"), str):
        raise APIFailure(400, f"{where}.document.title: Input should be a valid string")


def _check_pdf(data: str, where: str) -> None:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise APIFailure(400, f"{where}.document.source.base64.data: invalid base64 data") from None
    if not pdf.is_pdf(raw):
        raise APIFailure(400, f"{where}.document.source.base64.data: The PDF specified was not valid.")
    if pdf.is_encrypted(raw):
        raise APIFailure(400, f"{where}.document.source.base64.data: The PDF specified is encrypted or password-protected.")


def documents_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The document blocks of the messages, in order (their ``document_index`` is their place here)."""
    return [b for m in messages if isinstance(m.get("content"), list) for b in m["content"] if isinstance(b, dict) and b.get("type") == "document"]


def check_documents_together(messages: list[dict[str, Any]]) -> None:
    """At most 100 PDF pages in the request, and citations enabled on all its documents or on none."""
    documents = documents_of(messages)
    pages = sum(pdf.base64_page_count(str(d["source"].get("data", ""))) for d in documents if d["source"].get("type") == "base64")
    if pages > pdf.MAX_PDF_PAGES:
        raise APIFailure(400, f"A maximum of {pdf.MAX_PDF_PAGES} PDF pages may be provided. Found {pages}.")
    cited = {bool((d.get("citations") or {}).get("enabled")) for d in documents}
    if len(cited) > 1:
        raise APIFailure(400, "Citations must be enabled on all documents or on none of them.")


def check_roles_under_2026_10_21(messages: list[dict[str, Any]]) -> None:
    """What version 2026-10-21 refuses: a document directly in an assistant message, and text
    with citations in a user message (assistant text may keep its citations)."""
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict):
                continue
            if message.get("role") == "assistant" and block.get("type") == "document":
                raise APIFailure(400, f"messages.{i}.content.{j}: document blocks are not permitted in assistant messages")
            if message.get("role") == "user" and block.get("type") == "text" and block.get("citations"):
                raise APIFailure(400, f"messages.{i}.content.{j}.text.citations: citations are not permitted in user messages")


# --- the API's own tools, and MCP servers ---------------------------------------------------------

_FIRST_VERSIONS = ("web_search_20250305", "web_fetch_20250910")
"""The server tools' versions the 4 generation takes; later ones are for current models."""


def _check_server_tools(body: dict[str, Any], model: dict[str, Any]) -> None:
    """Web search and fetch in a version this stand-in knows, named as the API names them, used
    at least once; their later versions on current models only."""
    for i, tool in enumerate(body.get("tools") or []):
        kind = str(tool.get("type", "custom")) if isinstance(tool, dict) else ""
        if not kind.startswith(("web_search", "web_fetch")):
            continue
        name = "web_search" if kind.startswith("web_search") else "web_fetch"
        if kind not in (WEB_SEARCH_TOOLS if name == "web_search" else WEB_FETCH_TOOLS):
            raise APIFailure(400, f"tools.{i}: unknown tool type '{kind}'")
        if tool.get("name") != name:
            raise APIFailure(400, f"tools.{i}.{kind}.name: Input should be '{name}'")
        uses = tool.get("max_uses")
        if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses < 1):
            raise APIFailure(400, f"tools.{i}.{kind}.max_uses: Input should be greater than or equal to 1")
        if kind not in _FIRST_VERSIONS and model["id"] not in DEFAULT_SAMPLING_ONLY:
            raise APIFailure(400, f"tools.{i}: '{kind}' is not supported on {model['id']}; use '{_FIRST_VERSIONS[name == 'web_fetch']}'")


def _check_mcp_servers(body: dict[str, Any], betas: str) -> None:
    """MCP servers given with the connector's beta flag, each a named https URL; each toolset
    naming one of them."""
    servers = body.get("mcp_servers")
    toolsets = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "mcp_toolset"]
    if servers is None and not toolsets:
        return
    if not any(flag.strip().startswith("mcp-client-") for flag in betas.split(",")):
        raise APIFailure(400, "mcp_servers: the MCP connector needs the anthropic-beta header (mcp-client-2025-11-20)")
    names = []
    for i, server in enumerate(servers or []):
        if not isinstance(server, dict) or server.get("type") != "url":
            raise APIFailure(400, f"mcp_servers.{i}.type: Input should be 'url'")
        if not str(server.get("url", "")).startswith("https://"):
            raise APIFailure(400, f"mcp_servers.{i}.url: the URL of an MCP server must start with https://")
        if not isinstance(server.get("name"), str) or server["name"] in names:
            raise APIFailure(400, f"mcp_servers.{i}.name: each MCP server needs a name of its own")
        names.append(server["name"])
    for toolset in toolsets:
        if toolset.get("mcp_server_name") not in names:
            raise APIFailure(400, f"tools: mcp_toolset names the MCP server '{toolset.get('mcp_server_name')}', which mcp_servers does not define")
