"""Python functions as tools Claude may call: schemas from signatures, calls run safely.

A tool's JSON schema comes from its signature and type hints (through pydantic) and its
description from the docstring (first paragraph; ``name: text`` lines of an ``Args:`` or
``Parameters`` section describe the arguments). Only functions the user names are tools,
and only a ``tool_use`` block naming one of them runs anything; the model's text never does.
"""

from __future__ import annotations

import inspect
import json
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..api.errors import ClaudeError

RESULT_CHARS = 20_000
"""A tool result longer than this is cut (with a note) before it goes back to the model."""


class ToolError(ClaudeError):
    """A name given to --tools that is not a usable function."""


@dataclass(frozen=True)
class Tool:
    name: str
    function: Callable[..., Any]
    schema: dict[str, Any]
    description: str

    def definition(self) -> dict[str, Any]:
        """The entry for the request's ``tools`` list."""
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


@dataclass(frozen=True)
class ToolRun:
    """One call: what the model asked for and what came back."""

    tool_use_id: str
    name: str
    arguments: dict[str, Any]
    output: str
    is_error: bool

    def result_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": self.tool_use_id, "content": self.output}
        if self.is_error:
            block["is_error"] = True
        return block


def tools_named(names: str, namespace: Mapping[str, Any]) -> tuple[Tool, ...]:
    """The tools for comma-separated function ``names`` found in ``namespace`` (the notebook's):
    only these functions can be called, each offered once."""
    listed = [n.strip() for n in names.split(",") if n.strip()]
    if repeated := sorted({n for n in listed if listed.count(n) > 1}):
        raise ToolError(f"--tools names {', '.join(repeated)} more than once; each tool is offered once")
    missing = [n for n in listed if n not in namespace]
    if missing:
        raise ToolError(f"--tools {missing[0]}: no such function in the notebook")
    return tuple(tool_from(name, namespace[name]) for name in listed)


def tool_from(name: str, function: Any) -> Tool:
    """The tool for a user function, or a :class:`ToolError` saying why it can't be one."""
    if not callable(function) or inspect.isclass(function):
        raise ToolError(f"--tools {name}: not a function")
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        raise ToolError(f"--tools {name}: tool names may use letters, digits, _ and - only")
    summary, argument_help = _docstring(function)
    return Tool(name, function, _schema(name, function, argument_help), summary or f"The Python function {name}.")


def _schema(name: str, function: Callable[..., Any], argument_help: dict[str, str]) -> dict[str, Any]:
    from pydantic import TypeAdapter

    try:
        schema = TypeAdapter(function).json_schema()  # type: ignore[arg-type]  # pydantic takes callables too
    except Exception as exc:  # noqa: BLE001 - pydantic can't express some signatures (*args, exotic types)
        raise ToolError(f"--tools {name}: can't describe its arguments as JSON ({exc})".split("\n")[0]) from None
    properties = schema.get("properties", {})
    for argument, text in argument_help.items():
        if argument in properties:
            properties[argument].setdefault("description", text)
    return {"type": "object", "properties": properties, **({"required": schema["required"]} if schema.get("required") else {})}


def _docstring(function: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph, and argument descriptions from its Args section."""
    doc = inspect.getdoc(function) or ""
    summary = doc.split("\n\n")[0].strip()
    arguments = dict(re.findall(r"^[ \t]*\*{0,2}(\w+)\*{0,2}[ \t]*(?:\([^)\n]*\))?[ \t]*:[ \t]*(\S.*)$", doc.partition("\n\n")[2], re.MULTILINE))
    return summary, arguments


def run(tools: dict[str, Tool], block: dict[str, Any]) -> ToolRun:
    """Run the tool a ``tool_use`` block names; any exception becomes an ``is_error`` result."""
    name, arguments, tool_use_id = block.get("name", ""), block.get("input") or {}, block.get("id", "")
    tool = tools.get(name)
    if tool is None:
        return ToolRun(tool_use_id, name, arguments, f"there is no tool named {name!r}", is_error=True)
    try:
        from pydantic import validate_call

        value = validate_call(tool.function)(**arguments)
    except Exception as exc:  # noqa: BLE001 - whatever the user's object raises becomes one line
        return ToolRun(tool_use_id, name, arguments, _describe_exception(exc), is_error=True)
    return ToolRun(tool_use_id, name, arguments, _bounded(_as_text(value)), is_error=False)


def _describe_exception(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return _bounded("".join(lines).strip())


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _bounded(text: str) -> str:
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + f"\n… ({len(text) - RESULT_CHARS:,} more characters cut)"
