"""The model catalogue the stand-in serves from ``/v1/models``, newest first."""

from __future__ import annotations

from typing import Any

_CURRENT_CAPABILITIES = {
    "batch": {"supported": True},
    "structured_outputs": {"supported": True},
    "image_input": {"supported": True},
    "effort": {"supported": True},
    "thinking": {"supported": True, "types": {"adaptive": {"supported": True}, "enabled": {"supported": False}}},
}
_LEGACY_CAPABILITIES = {
    "batch": {"supported": True},
    "structured_outputs": {"supported": True},
    "image_input": {"supported": True},
    "effort": {"supported": False},
    "thinking": {"supported": True, "types": {"adaptive": {"supported": False}, "enabled": {"supported": True}}},
}


def _model(model_id: str, name: str, created: str, context: int, output: int, *, current: bool = True) -> dict[str, Any]:
    return {
        "id": model_id,
        "type": "model",
        "display_name": name,
        "created_at": f"{created}T00:00:00Z",
        "lifecycle": "active",
        "max_input_tokens": context,
        "max_tokens": output,
        "capabilities": _CURRENT_CAPABILITIES if current else _LEGACY_CAPABILITIES,
    }


MODELS: list[dict[str, Any]] = [
    _model("claude-fable-5-2", "Claude Fable 5.2", "2026-11-09", 1_000_000, 128_000),
    _model("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07", 1_000_000, 128_000),
    _model("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-09-30", 1_000_000, 128_000),
    _model("claude-opus-5-5", "Claude Opus 5.5", "2026-09-16", 1_000_000, 128_000),
    _model("claude-opus-5", "Claude Opus 5", "2026-07-24", 1_000_000, 128_000),
    _model("claude-sonnet-5", "Claude Sonnet 5", "2026-06-30", 1_000_000, 128_000),
    _model("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01", 200_000, 64_000, current=False),
]

DEFAULT_SAMPLING_ONLY = frozenset(m["id"] for m in MODELS if m["capabilities"] is _CURRENT_CAPABILITIES)
"""Models that accept only the default sampling values (temperature 1, no top_p/top_k)."""
