"""``{name}`` references in a prompt, replaced by values from the user's namespace.

Only references of the form ``name``, ``name.attr``, ``name[0]``, ``name['key']`` (chained)
are replaced, and they are looked up, never executed. Every other brace passes through
untouched, so prompts holding JSON, dicts, sets or code are safe (``str.format`` would
raise on them). ``{{name}}`` gives a literal ``{name}``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.errors import ClaudeError

_REF = r"[A-Za-z_]\w*(?:\s*(?:\.\s*[A-Za-z_]\w*|\[[^\[\]{}\n]+\]))*"
_PATTERN = re.compile(r"\{\{(?P<literal>" + _REF + r")\}\}|\{(?P<ref>" + _REF + r")\}")


class Unresolved(Exception):
    """A reference that names nothing (or whose lookup failed)."""


class RenderError(ClaudeError):
    """A reference that names a value which can't be turned into text (its ``__str__`` raised)."""


@dataclass
class Interpolated:
    text: str
    unresolved: list[str] = field(default_factory=list)
    """References left as written, with why."""


def interpolate(prompt: str, namespace: Mapping[str, Any], render: Callable[[Any], str] = str) -> Interpolated:
    """Replace each ``{reference}`` by ``render(value)``; leave the ones that name nothing."""
    unresolved: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group("literal") is not None:
            return "{" + match.group("literal") + "}"
        reference = match.group("ref")
        try:
            value = lookup(reference, namespace)
        except Unresolved as why:
            unresolved.append(f"{{{reference}}} ({why})")
            return match.group(0)
        return _rendered(reference, value, render)

    return Interpolated(_PATTERN.sub(substitute, prompt), unresolved)


def references(prompt: str) -> list[str]:
    """The ``{reference}``s a prompt holds (not ``{{literal}}`` ones), in order, each once."""
    found = (match.group("ref") for match in _PATTERN.finditer(prompt) if match.group("ref") is not None)
    return list(dict.fromkeys(found))


def root_name(reference: str) -> str:
    """The name a reference starts from: ``df`` for ``{df.shape}`` or ``{df['a']}``."""
    match = re.match(r"\s*([A-Za-z_]\w*)", reference)
    return match.group(1) if match else reference


def _rendered(reference: str, value: Any, render: Callable[[Any], str]) -> str:
    try:
        return render(value)
    except Exception as exc:  # noqa: BLE001 - whatever the user's object raises becomes one line
        reason = f"{type(exc).__name__}: {exc}".split("\n")[0]
        raise RenderError(f"{{{reference}}} names a {type(value).__name__} that can't be shown as text ({reason}); nothing was sent") from None


def lookup(reference: str, namespace: Mapping[str, Any]) -> Any:
    """The value a reference names: names, attributes and literal subscripts only."""
    try:
        tree = ast.parse(reference.strip(), mode="eval").body
    except SyntaxError:
        raise Unresolved("not a name") from None
    return _evaluate(tree, namespace)


def _evaluate(node: ast.AST, namespace: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id not in namespace:
            raise Unresolved(f"no variable {node.id!r}")
        return namespace[node.id]
    if isinstance(node, ast.Attribute):
        owner = _evaluate(node.value, namespace)
        try:
            return getattr(owner, node.attr)
        except Exception:  # noqa: BLE001 - whatever the user's object raises becomes one line
            raise Unresolved(f"no attribute {node.attr!r}") from None
    if isinstance(node, ast.Subscript):
        owner = _evaluate(node.value, namespace)
        key = _literal_key(node.slice)
        try:
            return owner[key]
        except Exception as exc:  # noqa: BLE001 - whatever the user's object raises becomes one line
            raise Unresolved(f"{type(exc).__name__} for [{ast.unparse(node.slice)}]") from None
    raise Unresolved("only names, attributes and literal indexes are looked up")


def _literal_key(node: ast.AST) -> Any:
    if isinstance(node, ast.Slice):
        return slice(*(None if part is None else _literal_key(part) for part in (node.lower, node.upper, node.step)))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise Unresolved("only literal indexes are looked up") from None
