"""``{name}`` references: looked up, never executed; every other brace untouched."""

from __future__ import annotations

import pytest

from claude_magic.attach.interpolate import interpolate


class Frame:
    shape = (3, 4)

    @property
    def broken(self) -> int:
        raise RuntimeError("boom")


NAMESPACE = {"x": 42, "items": ["a", "b", "c"], "d": {"k": {"deep": 1}}, "df": Frame(), "In": ["", "x = 42"], "Out": {1: 42}}


@pytest.mark.parametrize(
    ("prompt", "sent"),
    [
        ("value {x}", "value 42"),
        ("{items[0]} and {items[-1]} and {items[1:]}", "a and c and ['b', 'c']"),
        ("{d['k']['deep']} {d[\"k\"]}", "1 {'deep': 1}"),
        ("shape {df.shape}", "shape (3, 4)"),
        ("{In[1]} gave {Out[1]}", "x = 42 gave 42"),
        ("literal {{x}}", "literal {x}"),
        ('json {"a": {"b": [1, 2]}}', 'json {"a": {"b": [1, 2]}}'),
        ("set {1, 2} dict {'a': 1} empty {} fmt {:>10} {0}", "set {1, 2} dict {'a': 1} empty {} fmt {:>10} {0}"),
        ("code def f(): return {k: v for k, v in x}", "code def f(): return {k: v for k, v in x}"),
        ("call {x.bit_length()} stays", "call {x.bit_length()} stays"),
        ("{{ not a ref }}", "{{ not a ref }}"),
    ],
)
def test_references_are_replaced_and_other_braces_pass_through(prompt: str, sent: str) -> None:
    result = interpolate(prompt, NAMESPACE)
    assert result.text == sent
    assert result.unresolved == []


@pytest.mark.parametrize(
    ("prompt", "why"),
    [
        ("{missing}", "no variable 'missing'"),
        ("{items[9]}", "IndexError"),
        ("{d['nope']}", "KeyError"),
        ("{df.nothing}", "no attribute 'nothing'"),
        ("{df.broken}", "no attribute 'broken'"),
        ("{items[x]}", "literal indexes"),
    ],
)
def test_a_reference_that_names_nothing_is_left_as_written(prompt: str, why: str) -> None:
    result = interpolate(f"before {prompt} after", NAMESPACE)
    assert result.text == f"before {prompt} after"
    assert len(result.unresolved) == 1 and prompt in result.unresolved[0] and why in result.unresolved[0]


def test_values_go_through_the_renderer() -> None:
    assert interpolate("{x}", NAMESPACE, render=lambda v: f"<{v}>").text == "<42>"
