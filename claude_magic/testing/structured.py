"""Structured outputs in the stand-in: the rules ``output_config.format`` must satisfy, and answers
that follow a JSON schema.

The rules are the API's (protocol notes; Anthropic's structured-outputs page): a ``json_schema``
format, on a model whose ``/v1/models`` capabilities list ``structured_outputs``, whose schema
closes every object (``additionalProperties: false``), uses none of the keywords the API does not
enforce (numeric bounds, string lengths, item counts beyond 0 or 1), refers only to its own
``$defs``, and does not refer to itself.

Answers are deterministic and derived from the question (``seed``): a string field holds the
question's text, an enum the value a hash of it picks, a number its length; so a test can tell
each row's answer from the others'. Without a seed, values are the plain samples a tool call's
arguments get (``"text"``, ``1``, ``1.5``, ``true``, an enum's first value).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .rules import APIFailure

UNSUPPORTED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "maxItems", "uniqueItems")
_FORMATTED = {
    "date": "2026-11-01",
    "date-time": "2026-11-01T12:00:00Z",
    "time": "12:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_PLAIN = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}


def check_output_format(body: dict[str, Any], model: dict[str, Any]) -> None:
    """``output_config.format`` as the API takes it, on a model that takes it."""
    output_config = body.get("output_config")
    if not isinstance(output_config, dict) or output_config.get("format") is None:
        return
    form = output_config["format"]
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        raise APIFailure(400, "output_config.format.type: Input should be 'json_schema'")
    if not isinstance(form.get("schema"), dict):
        raise APIFailure(400, "output_config.format.schema: Field required")
    if not model.get("capabilities", {}).get("structured_outputs", {}).get("supported"):
        raise APIFailure(400, f"output_config.format: structured outputs are not supported for {model['id']}")
    schema = form["schema"]
    definitions = schema.get("$defs", {})
    _check_node(schema, definitions, "output_config.format.schema")
    _check_no_recursion(definitions)


def _check_node(node: Any, definitions: dict[str, Any], where: str) -> None:
    if not isinstance(node, dict):
        return
    reference = node.get("$ref")
    if isinstance(reference, str) and (not reference.startswith("#/$defs/") or reference[8:] not in definitions):
        raise APIFailure(400, f"{where}: $ref {reference!r} does not resolve to a definition in $defs")
    for keyword in UNSUPPORTED:
        if keyword in node:
            raise APIFailure(400, f"{where}: the keyword '{keyword}' is not supported by structured outputs")
    if node.get("minItems", 0) not in (0, 1):
        raise APIFailure(400, f"{where}: minItems values other than 0 or 1 are not supported")
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        raise APIFailure(400, f"{where}: for 'object' type, 'additionalProperties' must be explicitly set to false")
    for key, value in node.items():
        if key in ("properties", "$defs"):
            for name, sub in value.items():
                _check_node(sub, definitions, f"{where}.{key}.{name}")
        elif key in ("items", "not"):
            _check_node(value, definitions, f"{where}.{key}")
        elif key in ("anyOf", "allOf", "oneOf") and isinstance(value, list):
            for i, sub in enumerate(value):
                _check_node(sub, definitions, f"{where}.{key}.{i}")


def _check_no_recursion(definitions: dict[str, Any]) -> None:
    for name, body in definitions.items():
        seen: set[str] = set()
        pending = list(_references(body))
        while pending:
            target = pending.pop()
            if target == name:
                raise APIFailure(400, f"output_config.format.schema: recursive schemas are not supported ($defs.{name})")
            if target not in seen and target in definitions:
                seen.add(target)
                pending.extend(_references(definitions[target]))


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"][8:]] if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/") else []
        return found + [name for value in node.values() for name in _references(value)]
    if isinstance(node, list):
        return [name for value in node for name in _references(value)]
    return []


# --- answers that follow a schema -----------------------------------------------------------------


def answer_json(schema: dict[str, Any], seed: str) -> str:
    """The JSON text of an answer that follows ``schema``, derived from ``seed`` (the question)."""
    return json.dumps(sample_value(schema, schema.get("$defs", {}), seed), ensure_ascii=False)


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for a tool's required parameters: the default, else a plain value of the schema."""
    definitions = schema.get("$defs", {})
    properties = schema.get("properties", {})
    return {name: properties.get(name, {}).get("default", sample_value(properties.get(name, {}), definitions, None)) for name in schema.get("required", [])}


def sample_value(node: dict[str, Any], definitions: dict[str, Any], seed: str | None) -> Any:
    """A value ``node`` allows: from ``seed`` when given, else a plain one."""
    if isinstance(node.get("$ref"), str):
        return sample_value(definitions.get(node["$ref"].rsplit("/", 1)[-1], {}), definitions, seed)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][_pick(seed, len(node["enum"]))]
    variants = node.get("anyOf") or node.get("oneOf")
    if variants:
        return sample_value(next((v for v in variants if v.get("type") != "null"), variants[0]), definitions, seed)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" and node.get("properties"):
        required = node.get("required", [])
        names = list(node["properties"]) if seed is not None else required
        return {name: sample_value(node["properties"][name], definitions, seed) for name in names}
    if kind == "array" and seed is not None and "items" in node:
        return [sample_value(node["items"], definitions, seed)]
    if seed is None:
        return _PLAIN.get(str(kind), "text")
    return _seeded(kind, node.get("format"), seed)


def _seeded(kind: Any, form: Any, seed: str) -> Any:
    if kind == "string":
        return _FORMATTED.get(str(form), " ".join(seed.split())[:200])
    if kind == "integer":
        return len(seed)
    if kind == "number":
        return len(seed) / 10
    if kind == "boolean":
        return len(seed) % 2 == 0
    return _PLAIN.get(str(kind))


def _pick(seed: str | None, choices: int) -> int:
    if seed is None:
        return 0
    return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % choices
