"""The form an answer must take: a pydantic model, a TypedDict or a JSON schema, as the API takes it
and as each answer is checked against it.

The API constrains an answer to a JSON schema (structured outputs, or a forced tool's input), but
only to a subset of JSON Schema: every object closed (``additionalProperties: false``), no numeric
bounds, string lengths or item counts beyond 0 or 1, no recursion, no reference outside the schema
(protocol notes; Anthropic's SDK transforms schemas the same way). So the schema is sent in that
subset: what the API can't enforce moves into the field's description, where the model reads it,
and pydantic enforces all of it on each answer. What has no place in the subset (an object with
free-form keys, a schema that refers to itself) is refused before anything is sent, saying why.

The answer's top level is an object whose fields become the result's columns, in their order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ..api.errors import ClaudeError

_KEPT_BY_TYPE = {
    "object": ("properties", "required", "additionalProperties"),
    "array": ("items",),
    "string": (),
    "integer": (),
    "number": (),
    "boolean": (),
    "null": (),
}
_ALWAYS_KEPT = ("description", "title")
STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"})
"""The string formats structured outputs take (any other is described instead)."""


class SchemaError(ClaudeError):
    """A schema that can't be asked for: said before anything is sent."""


class AnswerMismatch(ValueError):
    """An answer that does not follow the schema (one line: where, and what)."""


@dataclass(frozen=True)
class AnswerSchema:
    """A schema ready to ask with: as the API takes it, its fields, and the check of an answer."""

    for_api: dict[str, Any]
    fields: tuple[str, ...]
    check: Callable[[Any], dict[str, Any]]
    """The answer's fields, validated (pydantic's Python values); raises :class:`AnswerMismatch`."""

    def row(self, value: Any) -> dict[str, Any]:
        """The answer ``value`` (parsed JSON) as the row's fields."""
        return self.check(value)


def answer_schema(schema: Any) -> AnswerSchema:
    """The :class:`AnswerSchema` for a pydantic model, a TypedDict or a JSON schema (a dict)."""
    if isinstance(schema, AnswerSchema):
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        model = schema
        return _made(model.model_json_schema(), lambda value: model.model_validate(value).model_dump())
    if _is_typeddict(schema):
        adapter: TypeAdapter[Any] = TypeAdapter(schema)
        return _made(adapter.json_schema(), lambda value: dict(adapter.validate_python(value)))
    if isinstance(schema, Mapping):
        built = model_of_json_schema(dict(schema))
        return _made(dict(schema), lambda value: built.model_validate(value).model_dump())
    raise SchemaError(f"schema= takes a pydantic model, a TypedDict or a JSON schema (a dict), not {type(schema).__name__}")


def _is_typeddict(schema: Any) -> bool:
    from typing_extensions import is_typeddict

    return is_typeddict(schema)


def _made(json_schema: dict[str, Any], validate: Callable[[Any], dict[str, Any]]) -> AnswerSchema:
    for_api = for_the_api(json_schema)

    def check(value: Any) -> dict[str, Any]:
        try:
            return validate(value)
        except ValidationError as error:
            raise AnswerMismatch(mismatch_line(error)) from None

    return AnswerSchema(for_api, tuple(for_api["properties"]), check)


def mismatch_line(error: ValidationError) -> str:
    """pydantic's errors in one line: the first, where it is, and how many more."""
    problems = error.errors()
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{where}: {first['msg']}{more}"


# --- the subset of JSON Schema the API takes ------------------------------------------------------


def for_the_api(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` in the subset structured outputs take; a :class:`SchemaError` for what can't be."""
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    _refuse_recursion(definitions)
    root = _resolved(schema, definitions)
    if root.get("type") != "object" or not root.get("properties"):
        raise SchemaError(
            "the schema's top level must be an object with fields (a pydantic model, a TypedDict, or "
            '{"type": "object", "properties": ...}): its fields become the result\'s columns'
        )
    sent = _subset(root, definitions, "")
    used = {name: _subset(definitions[name], definitions, name) for name in sorted(_references(sent, definitions))}
    return {**sent, **({"$defs": used} if used else {})}


def _resolved(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """A schema that is only a reference, as the definition it names."""
    while "$ref" in schema and set(schema) - {"$defs", "definitions", "$schema"} == {"$ref"}:
        schema = definitions[_definition_name(schema["$ref"])]
    return schema


def _definition_name(reference: str) -> str:
    for prefix in ("#/$defs/", "#/definitions/"):
        if reference.startswith(prefix):
            return reference[len(prefix) :]
    raise SchemaError(f"the schema refers to {reference!r}, outside itself: structured outputs take only references to its own $defs")


def _subset(node: dict[str, Any], definitions: dict[str, Any], path: str) -> dict[str, Any]:
    """One node in the subset: what the API takes is kept, what it can't enforce is described."""
    if "$ref" in node:
        name = _definition_name(node["$ref"])
        if name not in definitions:
            raise SchemaError(f"{_where(path)}refers to {node['$ref']!r}, which the schema does not define")
        return {"$ref": f"#/$defs/{name}", **{k: node[k] for k in _ALWAYS_KEPT if k in node}}
    kept: dict[str, Any] = {}
    described = {k: v for k, v in node.items() if k not in ("$defs", "definitions", "$schema")}
    for key in _ALWAYS_KEPT:
        if key in described:
            kept[key] = described.pop(key)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in described:
            variants = described.pop(combinator)
            kept["allOf" if combinator == "allOf" else "anyOf"] = [_subset(v, definitions, path) for v in variants]
    if "enum" in described and all(_primitive(v) for v in described["enum"]):
        kept["enum"] = list(described.pop("enum"))
    if "const" in described and _primitive(described["const"]):
        kept["const"] = described.pop("const")
    kind = described.pop("type", None)
    if isinstance(kind, list):
        kept["anyOf"] = [_subset({**described, "type": one}, definitions, path) for one in kind]
        return kept
    if kind is not None:
        kept["type"] = kind
        _typed(kind, described, kept, definitions, path)
    elif not {"anyOf", "allOf", "enum", "const"} & kept.keys():
        raise SchemaError(f"{_where(path)}has no type: give each field a type (or an enum, or anyOf of types)")
    if described:
        extra = ", ".join(f"{key}: {value}" for key, value in described.items())
        kept["description"] = f"{kept['description']}\n\n{{{extra}}}" if "description" in kept else f"{{{extra}}}"
    return kept


def _typed(kind: str, described: dict[str, Any], kept: dict[str, Any], definitions: dict[str, Any], path: str) -> None:
    """The keywords of a node of type ``kind`` that the API takes, moved from ``described`` to ``kept``."""
    if kind not in _KEPT_BY_TYPE:
        raise SchemaError(f"{_where(path)}has type {kind!r}, which is not a JSON Schema type")
    if kind == "object":
        free = described.pop("additionalProperties", False)
        properties = described.pop("properties", {})
        if free is not False or not properties:
            raise SchemaError(
                f"{_where(path)}is an object with free-form keys (a dict), which structured outputs can't take: "
                "give it named fields (a pydantic model or a TypedDict)"
            )
        kept["properties"] = {name: _subset(sub, definitions, _join(path, name)) for name, sub in properties.items()}
        kept["required"] = list(described.pop("required", []))
        kept["additionalProperties"] = False
    elif kind == "array":
        if "items" in described:
            kept["items"] = _subset(described.pop("items"), definitions, _join(path, "[]"))
        if described.get("minItems") in (0, 1):
            kept["minItems"] = described.pop("minItems")
    elif kind == "string" and described.get("format") in STRING_FORMATS:
        kept["format"] = described.pop("format")


def _refuse_recursion(definitions: dict[str, Any]) -> None:
    """A definition that refers to itself, directly or not, can't be asked for."""
    graph = {name: _references(body, {}) for name, body in definitions.items()}
    for start, refers_to in graph.items():
        stack, seen = list(refers_to), set()
        while stack:
            name = stack.pop()
            if name == start:
                raise SchemaError(f"the schema's {start!r} refers to itself, and structured outputs can't take a recursive schema")
            if name not in seen:
                seen.add(name)
                stack.extend(graph.get(name, ()))


def _references(node: Any, definitions: dict[str, Any]) -> set[str]:
    """The definitions ``node`` refers to (with ``definitions``: and those they refer to, in turn)."""
    found: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            reference = current.get("$ref")
            if isinstance(reference, str):
                name = _definition_name(reference)
                if name not in found:
                    found.add(name)
                    if name in definitions:
                        pending.append(definitions[name])
            pending.extend(v for k, v in current.items() if k not in ("$defs", "definitions"))
        elif isinstance(current, list):
            pending.extend(current)
    return found


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return f"the field {path!r} " if path else "the schema "


# --- a JSON schema as a pydantic model, to check answers against ----------------------------------

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
_FORMATS: dict[str, Any] = {"date-time": datetime, "date": date}
_CONSTRAINTS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "pattern": "pattern",
}


def model_of_json_schema(schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model that checks what ``schema`` describes (types, enums, required fields,
    bounds), for answers to a schema given as JSON."""
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    _refuse_recursion(definitions)
    root = _resolved(schema, definitions)
    model = _python_type(root, definitions, {}, str(root.get("title") or "Answer"))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise SchemaError("the schema's top level must be an object with fields: its fields become the result's columns")
    return model


def _python_type(node: dict[str, Any], definitions: dict[str, Any], made: dict[str, Any], name: str) -> Any:
    if "$ref" in node:
        key = _definition_name(node["$ref"])
        if key not in made:
            made[key] = _python_type(definitions[key], definitions, made, key)
        return made[key]
    if "const" in node:
        return Literal[node["const"]]
    if "enum" in node:
        return Literal[tuple(node["enum"])]
    variants = node.get("anyOf") or node.get("oneOf")
    kind = node.get("type")
    if isinstance(kind, list):
        variants = [{**node, "type": one} for one in kind]
    if variants:
        types = tuple(_python_type(v, definitions, made, name) for v in variants)
        return Union[types]  # noqa: UP007 - built at run time from a tuple
    if kind == "object":
        return _object_model(node, definitions, made, name)
    if kind == "array":
        item = _python_type(node["items"], definitions, made, name) if "items" in node else Any
        return _constrained(list[item], node)  # type: ignore[valid-type]
    if kind in _SCALARS:
        return _constrained(_FORMATS.get(node.get("format", ""), _SCALARS[kind]), node)
    return Any


def _object_model(node: dict[str, Any], definitions: dict[str, Any], made: dict[str, Any], name: str) -> Any:
    properties = node.get("properties")
    if not properties:
        return dict[str, Any]
    required = set(node.get("required", []))
    fields: dict[str, Any] = {}
    for field_name, sub in properties.items():
        python = _python_type(sub, definitions, made, f"{name}_{field_name}")
        fields[field_name] = (python, ...) if field_name in required else (Optional[python], None)  # noqa: UP045
    config = ConfigDict(extra="ignore")
    return create_model(str(node.get("title") or name), __config__=config, **fields)


def _constrained(python: Any, node: dict[str, Any]) -> Any:
    from typing import Annotated

    bounds = {argument: node[keyword] for keyword, argument in _CONSTRAINTS.items() if keyword in node}
    return Annotated[python, Field(**bounds)] if bounds else python
