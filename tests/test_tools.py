"""Functions as tools: schemas from signatures and docstrings; calls validated; failures reported."""

from __future__ import annotations

import pytest

from claude_magic.core.tools import RESULT_CHARS, ToolError, run, tool_from
from claude_magic.magics.code_cells import cells_for, python_blocks


def mean(values: list[float], trim: float = 0.0) -> float:
    """The mean of ``values``.

    Args:
        values: the numbers to average
        trim (float): fraction cut from each end first
    """
    if not values:
        raise ValueError("no values")
    return sum(values) / len(values)


def test_schema_comes_from_the_signature_and_docstring() -> None:
    tool = tool_from("mean", mean)
    assert tool.definition() == {
        "name": "mean",
        "description": "The mean of ``values``.",
        "input_schema": {
            "type": "object",
            "properties": {
                "values": {"items": {"type": "number"}, "title": "Values", "type": "array", "description": "the numbers to average"},
                "trim": {"default": 0.0, "title": "Trim", "type": "number", "description": "fraction cut from each end first"},
            },
            "required": ["values"],
        },
    }


def test_calls_are_validated_and_failures_are_results_not_crashes() -> None:
    tools = {"mean": tool_from("mean", mean)}
    ok = run(tools, {"id": "t1", "name": "mean", "input": {"values": [1, 2, "3"]}})
    assert (ok.output, ok.is_error) == ("2.0", False)
    assert ok.result_block() == {"type": "tool_result", "tool_use_id": "t1", "content": "2.0"}
    raised = run(tools, {"id": "t2", "name": "mean", "input": {"values": []}})
    assert raised.is_error and raised.output == "ValueError: no values" and raised.result_block()["is_error"] is True
    invalid = run(tools, {"id": "t3", "name": "mean", "input": {"values": "abc"}})
    assert invalid.is_error and "validation error" in invalid.output
    unknown = run(tools, {"id": "t4", "name": "os_system", "input": {"cmd": "rm -rf /"}})
    assert unknown.is_error and "no tool named 'os_system'" in unknown.output


def test_results_are_text_and_bounded() -> None:
    tools = {"big": tool_from("big", lambda: "x" * (RESULT_CHARS + 10)), "data": tool_from("data", lambda: {"a": [1, 2]})}
    assert "10 more characters cut" in run(tools, {"id": "1", "name": "big", "input": {}}).output
    assert run(tools, {"id": "2", "name": "data", "input": {}}).output == '{"a": [1, 2]}'


@pytest.mark.parametrize("thing", [42, int, "print"])
def test_only_functions_are_tools(thing: object) -> None:
    with pytest.raises(ToolError):
        tool_from("thing", thing)


def test_python_blocks_in_order_and_other_languages_skipped() -> None:
    answer = "Try:\n```python\nimport pandas as pd\n```\nthen\n```bash\npip install x\n```\n~~~\nprint(1)\n~~~\n"
    assert python_blocks(answer) == ["import pandas as pd", "print(1)"]
    assert cells_for(python_blocks(answer), one_cell_each=False) == ["import pandas as pd\n\nprint(1)"]
    assert cells_for(python_blocks(answer), one_cell_each=True) == ["import pandas as pd", "print(1)"]
    assert cells_for([], one_cell_each=False) == []
