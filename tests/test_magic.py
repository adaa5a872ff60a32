"""The magics in a real IPython kernel against the stand-in: what the user sees, and what
reached the server."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest
from kernel_harness import CellResult, Kernel

from claude_magic.testing import StandIn
from claude_magic.ui.render import display_markdown

pytestmark = pytest.mark.kernel

KEY = "sk-ant-kernel-test-key-6d1f0c2b9a"


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> Iterator[None]:
    """Each test starts with an empty conversation, default settings and a quiet server."""
    kernel.run(
        "import os\n"
        f"os.environ['ANTHROPIC_API_KEY'] = {KEY!r}\n"
        f"os.environ['ANTHROPIC_BASE_URL'] = {server.base_url!r}\n"
        "_m = get_ipython().magics_manager.registry['ClaudeMagics']\n"
        "_m.session.conversation.clear()\n"
        "for _name in ('model', 'max_tokens', 'temperature', 'effort', 'system', 'api_key', 'base_url', 'api_version', 'max_retries', 'timeout'):\n"
        "    _m.traits()[_name].set(_m, _m.traits()[_name].default())\n"
    )
    server.reset()
    yield


def answer_display(result: CellResult) -> dict:
    displays = [o for o in result.displays() if o.get("display_id")]
    assert len(displays) == 1, result.outputs
    return displays[0]


def test_answer_streams_into_one_display_and_ends_as_the_whole_markdown(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%%claude\nExplain the difference between a left join and an inner join. [[markdown]]", cell_id="a")
    assert result.status == "ok"
    sent = server.message_requests[-1]
    answer = answer_display(result)
    display_id = answer["display_id"]
    updates = [m for m in result.of_type("update_display_data") if m["content"]["transient"]["display_id"] == display_id]
    assert len(updates) >= 1
    # the saved output is the complete answer: exact text, and the Markdown the frontend renders
    assert answer["data"]["text/plain"] == sent.answer
    assert answer["data"]["text/markdown"] == display_markdown(sent.answer)
    assert "## Left join vs inner join" in answer["data"]["text/markdown"]
    assert "A coffee costs <span>&#36;</span>5 and a sandwich <span>&#36;</span>10." in answer["data"]["text/markdown"]
    assert "$n_{left}$" in answer["data"]["text/markdown"]
    footer = result.markdown()[-1]
    assert "claude-sonnet-5-5" in footer and "out tokens" in footer and "first token" in footer
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["stream"] is True and sent.body["model"] == "claude-sonnet-5-5"
    assert "temperature" not in sent.body


def test_partial_answers_are_shown_with_code_fences_closed(kernel: Kernel, server: StandIn) -> None:
    server.fail(delay=0.05)
    result = kernel.run("%config ClaudeMagics.refresh_rate = 50\n%claude [[markdown]]")
    intermediate = [m["content"]["data"]["text/markdown"] for m in result.of_type("update_display_data")][:-1]
    assert len(intermediate) > 5
    inside_code = [md for md in intermediate if "```python" in md and "print(left.merge" not in md]
    assert inside_code and all(md.rstrip().endswith("```") for md in inside_code)


def test_follow_up_cells_continue_the_conversation_and_a_rerun_forks_it(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%%claude\nFirst question", cell_id="one")
    kernel.run("%%claude\nSecond question", cell_id="two")
    kernel.run("%%claude\nThird question", cell_id="three")
    assert server.message_requests[-1].prompts() == ["First question", "Second question", "Third question"]
    kernel.run("%%claude\nSecond question, edited", cell_id="two")
    assert server.message_requests[-1].prompts() == ["First question", "Second question, edited"]
    kernel.run("%claude Fourth", cell_id="four")
    assert server.message_requests[-1].prompts() == ["First question", "Second question, edited", "Fourth"]
    history = server.message_requests[-1].messages
    assert [m["role"] for m in history] == ["user", "assistant"] * 2 + ["user"]


def test_two_questions_in_one_cell_both_stay(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude one\n%claude two", cell_id="both")
    kernel.run("%claude three", cell_id="other")
    assert server.message_requests[-1].prompts() == ["one", "two", "three"]


def test_a_one_liner_question_mark_is_a_question_not_a_help_request(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude What is a p-value?")
    assert result.status == "ok" and server.message_requests[-1].prompts() == ["What is a p-value?"]
    result = kernel.run("for topic in ['joins', 'p-values']:\n    %claude What are {topic}?")
    assert [r.prompts()[-1] for r in server.message_requests[-2:]] == ["What are joins?", "What are p-values?"]
    assert "--dry-run" in kernel.run("%claude?").reply["payload"][0]["data"]["text/plain"]
    kernel.run("%%claude\nA body line:\n%claude stays as written?")
    assert server.message_requests[-1].prompts()[-1] == "A body line:\n%claude stays as written?"


def test_one_liner_keeps_apostrophes_and_options(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude -m claude-haiku-5-5 --max-tokens 300 --effort low -s 'Be terse.' What's a p-value?")
    assert result.status == "ok"
    body = server.message_requests[-1].body
    assert body["model"] == "claude-haiku-5-5" and body["max_tokens"] == 300
    assert body["output_config"] == {"effort": "low"}
    assert body["system"] == "Be terse."
    assert server.message_requests[-1].prompts() == ["What's a p-value?"]


def test_temperature_is_sent_only_when_given(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude -m claude-haiku-4-5 -t 0.2 hello")
    assert server.message_requests[-1].body["temperature"] == 0.2
    kernel.run("%claude -m claude-haiku-4-5 hello")
    assert "temperature" not in server.message_requests[-1].body


def test_output_variable_holds_the_answer(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%%claude -o reply\nSay hi")
    result = kernel.run("print(reply == _m.session.conversation.exchanges[-1].answer[0]['text'], len(reply) > 20)")
    assert result.stdout.strip() == "True True"
    assert server.message_requests[-1].answer == kernel.run("print(reply, end='')").stdout


def test_dry_run_shows_the_body_and_sends_nothing(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude First")
    before = len(server.requests)
    result = kernel.run("%claude --dry-run -s terse Second {x}")
    assert len(server.requests) == before  # not even count_tokens
    summary = result.displays()[0]["data"]["text/plain"]
    assert "not sent" in summary and "local estimate; nothing was sent" in summary
    body = json.loads(result.displays()[-1]["data"]["text/plain"])
    assert body["system"] == "terse" and body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    markdown = result.displays()[-1]["data"]["text/markdown"]  # the notebook shows the history folded away
    assert markdown.startswith("<details><summary>2 earlier messages (1 turn, ") and "</details>" in markdown
    assert '"<the 2 earlier messages above>"' in markdown and '"text": "Second {x}"' in markdown.split("</details>")[1]
    assert KEY not in result.everything()


def test_new_and_no_history(kernel: Kernel, server: StandIn) -> None:
    kernel.run("%claude first")
    kernel.run("%claude --no-history aside")
    assert server.message_requests[-1].prompts() == ["aside"]
    kernel.run("%claude second")
    assert server.message_requests[-1].prompts() == ["first", "second"]
    kernel.run("%claude --new fresh start")
    assert server.message_requests[-1].prompts() == ["fresh start"]


def test_count_asks_the_server_to_count_and_sends_nothing_else(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%%claude --count -s terse\nHow long is this?")
    assert [r.path for r in server.requests] == ["/v1/messages/count_tokens"]
    summary = result.displays()[0]["data"]["text/plain"]
    assert "counted by the server (POST /v1/messages/count_tokens, the only request made)" in summary


@pytest.mark.parametrize(
    "code",
    [
        '%%claude -s "You are terse." -m "claude-haiku-5-5"\nhi',
        "%%claude -s 'You are terse.' -m claude-haiku-5-5\nhi",
        '%claude -s "You are terse." -m "claude-haiku-5-5" hi',
        "%claude --system='You are terse.' -m claude-haiku-5-5 hi",
    ],
)
def test_quoted_option_values_arrive_unquoted(kernel: Kernel, server: StandIn, code: str) -> None:
    assert kernel.run(code).error is None
    body = server.message_requests[-1].body
    assert (body["system"], body["model"], server.message_requests[-1].prompts()[-1]) == ("You are terse.", "claude-haiku-5-5", "hi")


def test_quoted_sweep_and_template_values_arrive_unquoted(kernel: Kernel, server: StandIn) -> None:
    kernel.run('%claude --sweep "effort=low,high" hi')
    assert sorted(r.body["output_config"]["effort"] for r in server.message_requests) == ["high", "low"]
    kernel.run('tpl = "Review this {language} code for {focus}."\n%claude -p tpl "language=Python 3" focus=\'naming things\'')
    assert server.message_requests[-1].prompts()[-1] == "Review this Python 3 code for naming things."


def test_an_unbalanced_quote_on_the_cell_line_is_one_line(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%%claude -s Don't\nhi")
    assert "unbalanced quote on the %%claude line" in result.stderr and server.requests == []


def test_one_liners_follow_the_same_interpolation_rules_as_cells(kernel: Kernel, server: StandIn) -> None:
    kernel.run("name = 'Ada'\nx = 5")
    for line in ("%claude only {{name}} and {name}, at $x", "%%claude\nonly {{name}} and {name}, at $x"):
        kernel.run(line)
        assert server.message_requests[-1].prompts()[-1] == "only {name} and Ada, at $x"


def test_braces_interpolate_only_names(kernel: Kernel, server: StandIn) -> None:
    count = kernel.run("x = 42\nd = {'k': [1, 2]}\nclass P: shape = (3, 4)\np = P()").reply["execution_count"]
    result = kernel.run(
        "%%claude\nx={x} k={d['k'][1]} shape={p.shape} literal={{x}} json={\"a\": {\"b\": 1}} set={1, 2} "
        f"code=def f(): return {{k: v for k, v in x}} missing={{nope}} cell={{In[{count}]}}"
    )
    sent = server.message_requests[-1].prompts()[-1]
    assert "x=42 k=2 shape=(3, 4) literal={x}" in sent
    assert 'json={"a": {"b": 1}} set={1, 2} code=def f(): return {k: v for k, v in x}' in sent
    assert "missing={nope}" in sent
    assert "cell=x = 42\nd = {'k': [1, 2]}" in sent
    assert "{nope}" in result.stderr and "names nothing" in result.stderr
    assert result.error is None


def test_config_traits_and_the_config_command_mask_the_key(kernel: Kernel, server: StandIn) -> None:
    kernel.run('%config ClaudeMagics.model = "claude-opus-5-5"\n%config ClaudeMagics.system = "You are concise."')
    kernel.run("%claude hi")
    body = server.message_requests[-1].body
    assert body["model"] == "claude-opus-5-5" and body["system"] == "You are concise."
    shown = kernel.run("%claude config")
    plain = shown.displays()[0]["data"]["text/plain"]
    rows = {line.split()[0]: line for line in plain.splitlines()}
    names = kernel.run("print(' '.join(_m.configurable()))").stdout.split()
    assert sorted(names) == sorted(kernel.run("print(' '.join(_m.class_trait_names(config=True)))").stdout.split())
    assert list(rows) == names  # every setting, in the order declared; a new one can't be left out
    assert rows["model"].split()[1:] == ["claude-opus-5-5", "%config"]
    assert server.base_url in rows["base_url"] and rows["base_url"].endswith("environment (ANTHROPIC_BASE_URL)")
    assert rows["api_key"].endswith("environment (ANTHROPIC_API_KEY)") and rows["max_tool_rounds"].split()[1] == "8"
    assert len({line.index(line.split()[1]) for line in plain.splitlines()}) == 1  # the values' column is aligned
    kernel.run(f'%config ClaudeMagics.api_key = "{KEY}"')
    listing = kernel.run("%config ClaudeMagics\n%config ClaudeMagics.api_key")
    assert KEY not in kernel.run("%claude config").everything()
    assert KEY not in listing.everything()
    assert kernel.run("%claude hello").status == "ok"
    assert server.message_requests[-1].headers["x-api-key"] == KEY


def test_models_command_lists_the_servers_models(kernel: Kernel) -> None:
    plain = kernel.run("%claude models").displays()[0]["data"]["text/plain"]
    assert "claude-sonnet-5-5" in plain and "claude-haiku-4-5" in plain and "200K" in plain


def test_reserved_words_and_how_to_ask_with_them(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude models are fun")
    assert result.reply["ename"] == "UsageError" and "%claude -- models are fun" in result.stderr
    kernel.run("%claude -- models are fun")
    assert server.message_requests[-1].prompts() == ["models are fun"]


def test_help_is_the_argument_declarations(kernel: Kernel) -> None:
    payload = kernel.run("%%claude?").reply["payload"][0]["data"]["text/plain"]
    for option in ("--model", "--max-tokens", "--temperature", "--effort", "--system", "--output", "--dry-run", "--new", "--no-history"):
        assert option in payload


def test_api_version_2026_never_sends_sampling(kernel: Kernel, server: StandIn) -> None:
    kernel.run('%config ClaudeMagics.api_version = "2026-10-21"')
    assert kernel.run("%claude hi").status == "ok"
    assert server.message_requests[-1].headers["anthropic-version"] == "2026-10-21"
    result = kernel.run("%claude -t 0.3 hi")
    assert "2026-10-21" in result.error["evalue"] and len(server.message_requests) == 1


def test_terminal_ipython_streams_to_stdout(server: StandIn, tmp_path) -> None:
    import subprocess
    import sys

    script = tmp_path / "ask.ipy"
    script.write_text("%load_ext claude_magic\n%claude Hello from a terminal\n")
    env = {"ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": KEY, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=nocolor", str(script)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert server.message_requests[-1].answer in done.stdout
    assert "claude-sonnet-5-5" in done.stdout and "out tokens" in done.stdout


# --- errors: one line, nothing lost, no key ---------------------------------------------------


def one_line_error(result: CellResult) -> str:
    error = result.error
    assert error is not None, result.outputs
    assert error["ename"] == "ClaudeMagicError"
    assert len(error["traceback"]) == 1 and "Traceback" not in error["traceback"][0]
    assert KEY not in result.everything()
    return error["evalue"]


def test_no_key_says_how_to_set_one_and_sends_nothing(kernel: Kernel, server: StandIn) -> None:
    message = one_line_error(kernel.run("del os.environ['ANTHROPIC_API_KEY']\n%claude hi"))
    assert "ANTHROPIC_API_KEY" in message
    assert server.requests == []


def test_wrong_key_is_named_masked(kernel: Kernel, server: StandIn) -> None:
    wrong = "sk-ant-wrong-key-00000000000000000"
    result = kernel.run(f"os.environ['ANTHROPIC_API_KEY'] = {wrong!r}\n%claude hi")
    message = one_line_error(result)
    assert "401" in message and "ANTHROPIC_API_KEY" in message and "sk-ant-…0000" in message
    assert wrong not in result.everything()[result.everything().index("%claude hi"):]
    assert len(server.message_requests) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [(403, "may not"), (404, "%claude models"), (400, "refused the request")],
)
def test_api_errors_read_clearly(kernel: Kernel, server: StandIn, status: int, expected: str) -> None:
    server.fail(status=status, message="scripted")
    message = one_line_error(kernel.run("%claude hi"))
    assert expected in message and str(status) in message and "req_standin_" in message
    assert len(server.message_requests) == 1


@pytest.mark.parametrize(("status", "expected"), [(429, "rate limited"), (529, "overloaded")])
def test_rate_limit_and_overload_retry_then_say_how_long_to_wait(kernel: Kernel, server: StandIn, status: int, expected: str) -> None:
    server.fail(status=status, retry_after=0.2, times=3)
    started = time.monotonic()
    message = one_line_error(kernel.run("%claude hi"))
    assert time.monotonic() - started >= 0.4  # two waits of retry-after
    assert expected in message and "after 3 attempts" in message
    assert len(server.message_requests) == 3


def test_retry_then_success_is_silent(kernel: Kernel, server: StandIn) -> None:
    server.fail(status=529, times=2, retry_after=0.05)
    result = kernel.run("%claude hi")
    assert result.status == "ok" and len(server.message_requests) == 3


def test_unreachable_server_names_the_base_url(kernel: Kernel) -> None:
    result = kernel.run(
        "import socket\n_s = socket.socket(); _s.bind(('127.0.0.1', 0)); _port = _s.getsockname()[1]; _s.close()\n"
        "%config ClaudeMagics.max_retries = 0\n"
        "os.environ['ANTHROPIC_BASE_URL'] = f'http://127.0.0.1:{_port}'\n%claude hi"
    )
    message = one_line_error(result)
    assert "could not reach http://127.0.0.1:" in message and "ANTHROPIC_BASE_URL" in message


def test_dns_failure_names_the_base_url(kernel: Kernel) -> None:
    result = kernel.run("%config ClaudeMagics.max_retries = 0\n%config ClaudeMagics.base_url = 'http://no-such-host.invalid'\n%claude hi")
    assert "could not reach http://no-such-host.invalid" in one_line_error(result)


def test_timeout_names_the_base_url(kernel: Kernel, server: StandIn) -> None:
    server.fail(stall=1.5)
    result = kernel.run("%config ClaudeMagics.max_retries = 0\n%config ClaudeMagics.timeout = 0.5\n%claude hi")
    message = one_line_error(result)
    assert "no answer from" in message and server.base_url in message


def test_a_read_timeout_mid_answer_says_so_and_keeps_the_partial_answer(kernel: Kernel, server: StandIn) -> None:
    server.fail(delay=1.0)
    result = kernel.run("%config ClaudeMagics.timeout = 0.4\n%claude Tell me a story [[words=50]]")
    kernel.run("%config ClaudeMagics.timeout = 600")
    message = one_line_error(result)
    assert "the API sent nothing for 0.4 s mid-answer (read timeout" in message and "dropped" not in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%claude --max-tokens 0 hi", "--max-tokens 0: give a number of at least 1"),
        ('%claude -m "" hi', "-m: the model name is empty"),
        ("%claude --tools add,add hi", "--tools names add more than once"),
        ("%claude -n 0 hi", "--samples 0: give a number of at least 1"),
        ("%claude --recent 0 hi", "--recent 0: give a number of at least 1"),
        ("%claude {bad}", "{bad} names a Unprintable that can't be shown as text (ValueError: no text); nothing was sent"),
        ("%claude -a talker hi", "can't attach `talker`: its _repr_llm_() raised RuntimeError: tongue-tied"),
    ],
)
def test_values_are_never_quietly_replaced_and_failing_objects_are_one_line(kernel: Kernel, server: StandIn, line: str, expected: str) -> None:
    kernel.run(BAD_OBJECTS)
    result = kernel.run(line)
    message = one_line_error(result) if result.error else result.stderr  # UsageError: IPython's own one line
    assert expected in message and message.count("\n") <= 1
    assert server.message_requests == []


BAD_OBJECTS = """
def add(a: int) -> int:
    return a
class Unprintable:
    def __str__(self):
        raise ValueError("no text")
class Talker:
    def _repr_llm_(self):
        raise RuntimeError("tongue-tied")
bad, talker = Unprintable(), Talker()
"""


def test_settings_refuse_values_that_mean_nothing(kernel: Kernel) -> None:
    refusals = {
        "max_tokens = 0": "max_tokens must be at least 1, not 0",
        "max_tool_rounds = 0": "max_tool_rounds must be at least 1, not 0",
        "model = ''": "model can't be empty",
        "context_budget = 0": "context_budget is a number of tokens",
    }
    for setting, why in refusals.items():
        assert why in kernel.run(f"%config ClaudeMagics.{setting}").stderr
    assert kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].context_budget is None").displays()[0]["data"]["text/plain"] == "True"
    assert kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].max_tokens").displays()[0]["data"]["text/plain"] == "8192"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [({"error_after": 4, "error_type": "overloaded_error"}, "overloaded_error"), ({"drop_after": 4}, "dropped")],
)
def test_a_broken_stream_keeps_the_partial_answer(kernel: Kernel, server: StandIn, fault: dict, expected: str) -> None:
    server.fail(**fault)
    result = kernel.run("%%claude -o partial\nTell me a story [[words=50]]", cell_id="story")
    message = one_line_error(result)
    assert expected in message and "partial answer" in message
    shown = answer_display(result)["data"]["text/plain"]
    full = server.message_requests[-1].answer
    assert shown and full.startswith(shown) and len(shown) < len(full)
    assert shown.split() == full.split()[:8]  # four deltas of two words
    footer = result.displays()[-1]["data"]["text/plain"]
    estimated = re.search(r"~(\d+) out tokens \(estimated from what arrived\)", footer)
    assert estimated and len(shown) // 4 <= int(estimated[1]) <= len(shown), footer  # not the 1 of message_start
    assert kernel.run("print(partial == %r)" % shown).stdout.strip() == "True"
    assert len(server.message_requests) == 1  # never retried once the answer started
    kernel.run("%claude and then?")
    history = server.message_requests[-1].messages
    assert history[1]["content"][0]["text"] == shown


def test_interrupt_stops_at_once_and_keeps_the_partial_answer(kernel: Kernel, server: StandIn) -> None:
    server.fail(delay=0.1)
    msg_id = kernel.submit("%claude Tell me a long story [[words=400]]", cell_id="long")
    result = kernel.collect(msg_id, until=lambda r: len(r.of_type("update_display_data")) >= 2)
    interrupted_at = time.monotonic()
    kernel.interrupt()
    result = kernel.collect(msg_id, result)
    assert time.monotonic() - interrupted_at < 2
    assert "interrupted" in one_line_error(result)
    shown = answer_display(result)["data"]["text/plain"]
    assert shown and server.message_requests[-1].answer.startswith(shown)
    footer = result.displays()[-1]["data"]["text/plain"]
    estimated = re.search(r"~(\d+) out tokens \(estimated from what arrived\)", footer)
    assert estimated and len(shown) // 4 <= int(estimated[1]) <= len(shown), footer  # a stopped answer isn't "1 out tokens"
    deadline = time.monotonic() + 2
    while server.active_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.active_streams == 0  # the connection was closed, the server stopped writing
    kernel.run("%claude go on")
    assert server.message_requests[-1].messages[1]["content"][0]["text"] == shown
