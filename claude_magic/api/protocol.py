"""Pydantic models of the Messages API wire format: requests, responses, stream events.

Wire data is validated once, at the edge (the client), and every model keeps fields it
does not know (``extra="allow"``): the API adds fields and block types over time, and
blocks such as thinking must be sent back exactly as they came.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .settings import Effort


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict, without unset optional fields."""
        return self.model_dump(mode="json", exclude_none=True)


def _type_tag(model: type[WireModel]) -> str:
    """The literal a model's ``type`` field holds."""
    return get_args(model.model_fields["type"].annotation)[0]  # type: ignore[no-any-return]


# --- content blocks (responses, and sent back as history) ---------------------------------


class TextBlock(WireModel):
    type: Literal["text"] = "text"
    text: str
    citations: list[dict[str, Any]] | None = None


class ThinkingBlock(WireModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(WireModel):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


class ToolUseBlock(WireModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: Any = Field(default_factory=dict)


class ServerToolUseBlock(WireModel):
    type: Literal["server_tool_use"] = "server_tool_use"
    id: str
    name: str
    input: Any = Field(default_factory=dict)


class ImageSource(WireModel):
    type: Literal["base64"] = "base64"
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class ImageBlock(WireModel):
    type: Literal["image"] = "image"
    source: ImageSource | dict[str, Any]


class OtherBlock(WireModel):
    """A block type this package does not model (server-tool results, documents, …)."""

    type: str


# Unions are tried left to right, so a type this package does not know falls through to the
# last member, which accepts any ``type``: unknown blocks, deltas and events are kept, not fatal.
ContentBlock = Annotated[
    TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock | ServerToolUseBlock | ImageBlock | OtherBlock,
    Field(union_mode="left_to_right"),
]


# --- requests --------------------------------------------------------------------------------


class MessageParam(WireModel):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class OutputConfig(WireModel):
    effort: Effort | None = None


class MessageRequest(WireModel):
    """The body of ``POST /v1/messages``; sampling fields are sent only when set."""

    model: str
    max_tokens: int
    messages: list[MessageParam]
    system: str | list[TextBlock] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    output_config: OutputConfig | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    """Notebook functions, and tools the API runs itself (web search and fetch, MCP toolsets)."""
    mcp_servers: list[dict[str, Any]] | None = None
    """Remote MCP servers for the MCP connector (sent with its ``anthropic-beta`` flag)."""


# --- responses ---------------------------------------------------------------------------------


class Usage(WireModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Message(WireModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ContentBlock] = Field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = Field(default_factory=Usage)

    @property
    def text(self) -> str:
        """The answer's text: its text blocks joined."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class ModelInfo(WireModel):
    id: str
    type: Literal["model"] = "model"
    display_name: str = ""
    created_at: str | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None


class ModelPage(WireModel):
    data: list[ModelInfo]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class TokenCount(WireModel):
    input_tokens: int


class ErrorBody(WireModel):
    type: str = "api_error"
    message: str = ""


# --- stream events ----------------------------------------------------------------------------


class TextDelta(WireModel):
    type: Literal["text_delta"]
    text: str


class InputJSONDelta(WireModel):
    type: Literal["input_json_delta"]
    partial_json: str


class ThinkingDelta(WireModel):
    type: Literal["thinking_delta"]
    thinking: str


class SignatureDelta(WireModel):
    type: Literal["signature_delta"]
    signature: str


class CitationsDelta(WireModel):
    type: Literal["citations_delta"]
    citation: dict[str, Any]


class OtherDelta(WireModel):
    type: str


Delta = Annotated[
    TextDelta | InputJSONDelta | ThinkingDelta | SignatureDelta | CitationsDelta | OtherDelta,
    Field(union_mode="left_to_right"),
]


class MessageStartEvent(WireModel):
    type: Literal["message_start"]
    message: Message


class ContentBlockStartEvent(WireModel):
    type: Literal["content_block_start"]
    index: int
    content_block: ContentBlock


class ContentBlockDeltaEvent(WireModel):
    type: Literal["content_block_delta"]
    index: int
    delta: Delta


class ContentBlockStopEvent(WireModel):
    type: Literal["content_block_stop"]
    index: int


class MessageDeltaBody(WireModel):
    stop_reason: str | None = None
    stop_sequence: str | None = None


class MessageDeltaUsage(WireModel):
    """Cumulative totals: each field present overwrites the running value."""

    output_tokens: int
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessageDeltaEvent(WireModel):
    type: Literal["message_delta"]
    delta: MessageDeltaBody
    usage: MessageDeltaUsage


class MessageStopEvent(WireModel):
    type: Literal["message_stop"]


class PingEvent(WireModel):
    type: Literal["ping"]


class ErrorEvent(WireModel):
    type: Literal["error"]
    error: ErrorBody


RATE_LIMIT_WAIT = "claude_magic_rate_limit_wait"
"""The event claude-magic's Jupyter server sends (the API never does) while a streaming request
waits its turn under the rate limits it shares between kernels: see :class:`RateLimitWaitEvent`."""


class RateLimitWaitEvent(WireModel):
    """The request is queued for the rate limit, ``waited`` seconds so far. The Jupyter server's
    proxy sends it about once a second from the first second on, before the API's own events;
    a client that does not know it ignores it, as the API asks of unknown events."""

    type: Literal["claude_magic_rate_limit_wait"]
    waited: float


class OtherEvent(WireModel):
    """An event type this package does not know; kept, never fatal."""

    type: str


StreamEvent = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorEvent
    | RateLimitWaitEvent
    | OtherEvent
)

EVENT_MODELS: dict[str, type[WireModel]] = {_type_tag(m): m for m in get_args(StreamEvent) if m is not OtherEvent}

_any_event: TypeAdapter[StreamEvent] = TypeAdapter(Annotated[StreamEvent, Field(union_mode="left_to_right")])


def parse_event(name: str | None, data: str | bytes) -> StreamEvent:
    """Validate one SSE event's data. The ``event:`` name picks the model when it is known."""
    model = EVENT_MODELS.get(name) if name else None
    if model is not None:
        return model.model_validate_json(data)  # type: ignore[return-value]
    return _any_event.validate_json(data)
