"""Prompt iteration in a real kernel: the answer cache and code into the next cell."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from kernel_harness import Kernel

from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-iteration-test-key-0a1b2c3d4e"


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> None:
    kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].session.conversation.clear()\n%config ClaudeMagics.cache = False")
    server.reset()


def test_a_rerun_with_cached_costs_no_request_and_shows_the_same_answer(kernel: Kernel, server: StandIn, home: Path) -> None:
    first = kernel.run("%%claude --cached\nWhat is a p-value?", cell_id="q")
    again = kernel.run("%%claude --cached\nWhat is a p-value?", cell_id="q")
    assert len(server.message_requests) == 1
    assert again.markdown()[0] == first.markdown()[0]
    assert "from the answer cache" in again.markdown()[-1] and "from the answer cache" not in first.markdown()[-1]
    cached_files = list((home / "answers").glob("*.json"))
    assert len(cached_files) == 1 and KEY not in cached_files[0].read_text()
    kernel.run("%claude and then?")  # the cached exchange is in the conversation like any other
    assert server.message_requests[-1].prompts() == ["What is a p-value?", "and then?"]


def test_a_changed_prompt_misses_and_fresh_asks_again(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%config ClaudeMagics.cache = True")
    kernel.run("%claude --no-history alpha")
    kernel.run("%claude --no-history alpha")
    assert len(server.message_requests) == 1
    kernel.run("%claude --no-history beta")
    assert len(server.message_requests) == 2
    result = kernel.run("%claude --no-history --fresh alpha")
    assert len(server.message_requests) == 3 and "from the answer cache" not in result.markdown()[-1]


def test_code_goes_to_the_next_cell_never_run(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude --code Show me a join [[markdown]]")
    payloads = [p for p in result.reply["payload"] if p["source"] == "set_next_input"]
    assert len(payloads) == 1 and payloads[0]["replace"] is False
    assert payloads[0]["text"].startswith("import pandas as pd") and "left.merge(right" in payloads[0]["text"]
    assert "1 new cell below, not run" in result.stdout and not result.stderr  # a note, not a warning
    assert kernel.run("print('left' in dir())").stdout.strip() == "False"


def test_code_in_vscode_goes_to_new_cells_in_order(kernel: Kernel, server: StandIn) -> None:
    server.reply(text="First:\n\n```python\nimport a\n```\n\nthen:\n\n```python\nimport b\n```\n")
    result = kernel.run("__vsc_ipynb_file__ = '/tmp/x.ipynb'\n%config ClaudeMagics.code_cells = 'each'\n%claude --code Two steps")
    kernel.run("del __vsc_ipynb_file__\n%config ClaudeMagics.code_cells = 'joined'")
    texts = [p["text"] for p in result.reply["payload"] if p["source"] == "set_next_input"]
    assert texts == ["import b", "import a"]  # VS Code inserts each right below the cell: last first lands in order
    assert "2 new cells below, not run" in result.stdout


def test_an_answer_without_code_says_so(kernel: Kernel) -> None:
    assert "no Python code block" in kernel.run("%claude --code hello").stdout



def test_code_cells_each_offers_one_payload_per_block() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from claude_magic.magics.code_cells import put_in_next_cells

    shell = InteractiveShell.instance()
    shell.payload_manager.clear_payload()
    note = put_in_next_cells(shell, ["import a", "import b"], in_vscode=False)
    assert [p["text"] for p in shell.payload_manager.read_payload()] == ["import a", "import b"]
    assert "2 cells offered below" in note


def test_a_template_is_filled_from_key_value_pairs_then_variables(kernel: Kernel, server: StandIn) -> None:
    kernel.run("review = 'Review this {language} snippet for {focus}: {{literal}} {\"json\": 1}'\nfocus = 'speed'")
    kernel.run("%claude -p review language=Python")
    kernel.run("%claude -p review language=R 'focus=style and naming'")
    prompts = [r.prompts()[-1] for r in server.message_requests]
    assert prompts == [
        'Review this Python snippet for speed: {literal} {"json": 1}',
        'Review this R snippet for style and naming: {literal} {"json": 1}',
    ]
    assert "key=value" in kernel.run("%claude -p review oops").stderr
    assert "no string variable" in kernel.run("%claude -p missing a=1").stderr


def test_compare_asks_every_model_at_once_and_leaves_the_conversation_alone(kernel: Kernel, server: StandIn) -> None:
    server.fail(delay=0.02, times=3)
    kernel.run("%claude first")
    result = kernel.run("%claude --compare claude-sonnet-5-5,claude-haiku-5-5,claude-opus-5-5 Which is best? [[words=40]]")
    asked = server.message_requests[1:]
    assert sorted(r.body["model"] for r in asked) == ["claude-haiku-5-5", "claude-opus-5-5", "claude-sonnet-5-5"]
    assert server.max_concurrent >= 3  # the three streams overlapped
    assert all(r.prompts() == ["first", "Which is best? [[words=40]]"] for r in asked)
    final = result.displays()[0]["data"]
    assert set(final) == {"text/markdown", "text/plain"}  # no text/html: nbconvert's Markdown export would prefer it
    assert final["text/markdown"].count('class="cm-col"') == 3 and "<style" not in final["text/markdown"]
    assert final["text/markdown"].count("≈ $") == 3  # each column's cost alone in its block: a plain dollar
    assert "total" in final["text/plain"] and "≈ $" in final["text/plain"]
    for r in asked:
        assert r.answer.split()[0] in final["text/plain"]
    kernel.run("%claude after")
    assert server.message_requests[-1].prompts() == ["first", "after"]  # compared answers not added


def test_ctrl_c_during_a_compare_stops_every_column_at_once_and_keeps_what_arrived(kernel: Kernel, server: StandIn) -> None:
    msg_id = kernel.submit("%claude --compare claude-sonnet-5-5,claude-haiku-5-5 A long story [[delay=0.05]] [[words=400]]")
    shown = kernel.collect(msg_id, until=lambda r: server.active_streams >= 2 and len(r.displays()) > 0, timeout=30)
    time.sleep(0.5)
    kernel.interrupt()
    interrupted = time.monotonic()
    result = kernel.collect(msg_id, shown, timeout=30)
    assert time.monotonic() - interrupted < 3.0, "the columns went on after Ctrl-C"
    deadline = time.monotonic() + 2
    while any(r.ended is None for r in server.message_requests) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(r.ended is not None for r in server.message_requests), "a column's stream stayed open"
    final = result.displays()[-1]["data"]["text/plain"]
    assert final.count("interrupted") == 2, final
    assert all((r.answer or "?").split()[0] in final for r in server.message_requests)  # each column keeps what arrived
    assert kernel.run("%claude and after that?").error is None  # the kernel, its loop and its client are fine


def test_usage_counts_every_compared_answer_once_kept_or_not(kernel: Kernel, server: StandIn) -> None:
    kernel.run("from claude_magic.core.pricing import Tally\nget_ipython().magics_manager.registry['ClaudeMagics'].session.usage = Tally()")
    kernel.run("%claude --compare claude-sonnet-5-5,claude-haiku-5-5 pick one")
    kernel.run("%claude keep 1")
    usage = kernel.run("%claude usage").displays()[0]["data"]["text/plain"]
    assert re.search(r"this session\s+2\s", usage), usage


def test_sweep_and_samples_send_one_request_per_value(kernel: Kernel, server: StandIn) -> None:
    kernel.run("prompts = ['Be terse.', 'Be thorough.']")
    kernel.run("%claude --sweep effort=low,medium,high hi")
    assert sorted(r.body["output_config"]["effort"] for r in server.message_requests) == ["high", "low", "medium"]  # sent at once
    kernel.run("%claude --sweep system=prompts hi")
    assert sorted(r.body["system"] for r in server.message_requests[3:]) == ["Be terse.", "Be thorough."]
    kernel.run("%claude -n 3 hi")
    assert len(server.message_requests) == 8
    assert "SETTING=" in kernel.run("%claude --sweep colour=red hi").error["evalue"]


def test_keep_adds_the_chosen_answer_to_the_conversation(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude --compare claude-sonnet-5-5,claude-haiku-5-5 pick one")
    chosen = next(r.answer for r in server.message_requests if r.body["model"] == "claude-haiku-5-5")
    assert "now part of the conversation" in kernel.run("%claude keep 2").stdout
    kernel.run("%claude and so?")
    history = server.message_requests[-1].messages
    assert history[0]["content"][-1]["text"] == "pick one" and history[1]["content"][0]["text"] == chosen
    assert "keep N" in kernel.run("%claude keep 7").stderr


def test_think_streams_thinking_collapsed_above_the_answer_and_sends_it_back(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude --think --effort high Why is the sky blue?")
    body = server.message_requests[-1].body
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "high"}
    markdown = result.markdown()[0]
    assert markdown.startswith("<details><summary>Thinking</summary>") and "The user asks: “Why is the sky blue?”" in markdown
    assert markdown.rstrip().endswith(display_answer(server))
    kernel.run("%claude and at sunset?")
    thinking = server.message_requests[-1].messages[1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("sig_standin_")  # sent back whole


def test_think_with_a_budget_where_the_model_takes_one(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude -m claude-haiku-4-5 --max-tokens 4000 --think 2048 hi")
    assert server.message_requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    kernel.run("%claude -m claude-haiku-4-5 --max-tokens 4000 --think hi")  # the form this model takes
    assert server.message_requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    sent = len(server.message_requests)
    error = kernel.run("%claude --think 2048 hi").error["evalue"]
    assert "thinks adaptively and takes no budget" in error and len(server.message_requests) == sent


def display_answer(server: StandIn) -> str:
    from claude_magic.ui.render import display_markdown

    return display_markdown(server.message_requests[-1].answer).rstrip()


TOOLS = '''
def add(a: int, b: int = 2) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b

def boom(x: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot handle {x}")
'''


def test_tool_loop_runs_named_functions_shows_each_call_and_keeps_the_exchange(kernel: Kernel, server: StandIn) -> None:
    kernel.run(TOOLS)
    server.tool_calls.extend([("add", {"a": 40, "b": 2}), ("boom", {"x": "this"})])
    result = kernel.run("%claude --tools add,boom Please compute", cell_id="tools")
    assert result.error is None
    first, second, third = server.message_requests
    assert [t["name"] for t in first.body["tools"]] == ["add", "boom"]
    assert first.body["tools"][0]["input_schema"]["properties"]["a"]["description"] == "the first"
    assert second.messages[-1]["content"] == [{"type": "tool_result", "tool_use_id": second.messages[-2]["content"][1]["id"], "content": "42"}]
    failed = third.messages[-1]["content"][0]
    assert failed["is_error"] is True and failed["content"] == "ValueError: cannot handle this"
    shown = "\n".join(result.markdown())
    assert "🔧 add(a=40, b=2) → result" in shown and "🔧 boom(x=&#x27;this&#x27;) → error" in shown
    assert "I'll use the tool `add`." in result.markdown()[0]  # each round's text shown whole
    assert "tool result (error): ValueError: cannot handle this" in third.answer
    kernel.run("%claude thanks")
    roles = [(m["role"], [b.get("type") for b in m["content"]] if isinstance(m["content"], list) else "text") for m in server.message_requests[-1].messages]
    assert [r for r, _ in roles] == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert roles[1][1] == ["text", "tool_use"] and roles[2][1] == ["tool_result"]


def test_the_tool_loop_is_bounded_says_so_and_the_conversation_goes_on(kernel: Kernel, server: StandIn) -> None:
    kernel.run(TOOLS + "\n%config ClaudeMagics.max_tool_rounds = 2")
    try:
        server.tool_calls.extend([("add", {"a": 1})] * 5)
        result = kernel.run("%claude --tools add keep adding")
    finally:
        kernel.run("%config ClaudeMagics.max_tool_rounds = 8")
        server.tool_calls.clear()
    assert len(server.message_requests) == 3 and "stopped after 2 tool rounds" in result.stderr
    assert "add(a=1) was not run" in result.stderr and "ask again" not in result.stderr
    after = kernel.run("%claude and now?")
    assert after.error is None, after.error  # the API refuses a tool_use left without its tool_result
    last_answer = server.message_requests[-1].messages[-2]["content"]
    assert [b["type"] for b in last_answer] == ["text", "text"]
    assert last_answer[-1]["text"] == "[Tool call add(a=1) not run: the limit of 2 tool rounds was reached.]"


def test_a_tool_call_without_tools_is_not_run_and_leaves_the_conversation_usable(kernel: Kernel, server: StandIn) -> None:
    server.tool_calls.extend([("add", {"a": 2})])
    server.scripted_calls_need_tools = False
    try:
        result = kernel.run("%claude a question offering no tools")
    finally:
        server.scripted_calls_need_tools = True
        server.tool_calls.clear()
    assert "Claude asked to call add(a=2), which is not among --tools; it was not run" in result.stderr
    assert kernel.run("%claude fine").error is None


def test_an_interrupt_while_a_tool_runs_keeps_the_round_and_says_so(kernel: Kernel, server: StandIn) -> None:
    kernel.run("import time\ndef slow(seconds: float) -> str:\n    \"\"\"Sleep.\"\"\"\n    time.sleep(seconds)\n    return 'done'")
    server.tool_calls.extend([("slow", {"seconds": 30})])
    msg_id = kernel.submit("%claude --tools slow take your time", cell_id="slow")
    result = kernel.collect(msg_id, until=lambda r: any("I'll use the tool" in m for m in r.markdown()))
    time.sleep(0.3)  # the tool is running
    kernel.interrupt()
    result = kernel.collect(msg_id, result)
    message = result.error["evalue"]
    assert "interrupted" in message and "before the answer started" not in message
    assert len(server.message_requests) == 1
    assert kernel.run("%claude go on").error is None
    answered = server.message_requests[-1].messages[-2]["content"]
    assert answered[0]["text"] == "I'll use the tool `slow`."
    assert answered[-1]["text"] == "[Tool call slow(seconds=30) not run: interrupted by the user.]"


def test_only_named_functions_are_tools(kernel: Kernel, server: StandIn) -> None:
    assert "no such function" in kernel.run("%claude --tools nope hi").error["evalue"]
    assert server.message_requests == []


def test_sweep_over_thinking(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude -m claude-haiku-4-5 --max-tokens 4000 --sweep thinking=off,2048 hi")
    sent = [r.body.get("thinking") for r in server.message_requests]
    assert len(sent) == 2 and None in sent and {"type": "enabled", "budget_tokens": 2048} in sent
