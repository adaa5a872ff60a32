"""What the stand-in answers: deterministic text derived from the request.

A prompt may carry directives in double brackets (``[[markdown]]``, ``[[words=500]]``,
``[[delay=0.05]]``, ``[[echo]]``) so notebooks and tests can ask for a rich or long answer
without access to the server object.

The answer is then "generated" under the request's limits (:func:`generate`), counting one
output token a streamed delta: thinking, text, then the tool call, ending early at the first
stop sequence in the text or when ``max_tokens`` tokens have been produced, as the API does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..api.media import image_size
from ..api.pdf import base64_page_count

STAND_IN_NOTE = "_(Answered by the claude-magic offline stand-in, not by Claude.)_"

RICH_MARKDOWN = """\
## Left join vs inner join

An **inner join** keeps only the keys found in *both* tables; a **left join** keeps every \
row of the left table and fills the gaps with `NaN`.

| join  | rows kept              | missing values |
|-------|------------------------|----------------|
| inner | keys in both           | none           |
| left  | every left-hand key    | `NaN` on the right |

```python
import pandas as pd

left = pd.DataFrame({"key": [1, 2, 3], "x": ["a", "b", "c"]})
right = pd.DataFrame({"key": [1, 3], "y": [10.0, 30.0]})
print(left.merge(right, on="key", how="left"))
```

The number of rows of a left join is at least $n_{left}$, and the fraction of matched keys is \
$$\\frac{|L \\cap R|}{|L|}$$

A coffee costs $5 and a sandwich $10.
"""

_DIRECTIVE = re.compile(r"\[\[\s*([a-z_]+)\s*(?:=\s*([^\]]+?))?\s*\]\]")
_LOREM = ["stream", "tokens", "arrive", "one", "after", "another", "while", "the", "notebook", "renders", "the", "growing", "answer", "in", "place", "so", "the", "reader", "sees", "progress"]


@dataclass(frozen=True)
class Directives:
    markdown: bool = False
    words: int | None = None
    delay: float | None = None
    echo: bool = False


def directives(prompt: str) -> Directives:
    found = {name: value for name, value in _DIRECTIVE.findall(prompt)}
    return Directives(
        markdown="markdown" in found,
        words=int(found["words"]) if found.get("words", "").strip().isdigit() else None,
        delay=float(found["delay"]) if "delay" in found and _is_number(found["delay"]) else None,
        echo="echo" in found,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_of_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")


def image_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        b
        for m in messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "image"
    ]


def count_images(messages: list[dict[str, Any]]) -> int:
    return len(image_blocks(messages))


def describe_image(block: dict[str, Any]) -> str:
    """``image/png, 640×480 px``: what the stand-in saw of an image block."""
    source = block.get("source", {})
    if source.get("type") != "base64":
        return f"{source.get('type', '?')} source"
    width, height = image_size(source.get("data", ""))
    return f"{source.get('media_type')}, {width}×{height} px"


def document_blocks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for m in messages if isinstance(m.get("content"), list) for b in m["content"] if isinstance(b, dict) and b.get("type") == "document"]


def describe_document(block: dict[str, Any]) -> str:
    """``“report.pdf”, PDF, 3 pages``: what the stand-in saw of a document block."""
    source = block.get("source", {})
    title = f"“{block['title']}”, " if block.get("title") else ""
    cited = ", citations on" if (block.get("citations") or {}).get("enabled") else ""
    if source.get("type") == "base64":
        return f"{title}PDF, {base64_page_count(str(source.get('data', '')))} pages{cited}"
    if source.get("type") == "text":
        return f"{title}text, {len(str(source.get('data', ''))):,} characters{cited}"
    return f"{title}{source.get('type', '?')} source{cited}"


def question_of(content: Any) -> str:
    """The question in a user turn: its last text block (attachments come before it)."""
    if isinstance(content, str):
        return content
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return "(tool results)"
    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return texts[-1] if texts else ""


def answer_for(body: dict[str, Any]) -> str:
    """The answer text for a validated request body."""
    messages: list[dict[str, Any]] = body["messages"]
    prompt = text_of_content(messages[-1].get("content", "")) if messages else ""
    wanted = directives(prompt)
    if wanted.echo:
        return json.dumps(body, indent=1)
    if wanted.markdown:
        return f"{RICH_MARKDOWN}\n{STAND_IN_NOTE}"
    if wanted.words:
        words = [_LOREM[i % len(_LOREM)] for i in range(wanted.words)]
        return " ".join(words) + f"\n\n{STAND_IN_NOTE}"
    return summary_answer(body)


def thinking_for(body: dict[str, Any]) -> str:
    """What the stand-in "thinks" when thinking is on: deterministic, from the question."""
    question = " ".join(question_of(body["messages"][-1].get("content", "")).split())[:120]
    return f"The user asks: “{question}”. I will check what the request holds and answer plainly."


def summary_answer(body: dict[str, Any]) -> str:
    """A short answer that reports what the request held, so tests can assert on it."""
    messages = body["messages"]
    content = messages[-1].get("content", "")
    preview = " ".join(question_of(content).split())
    preview = preview if len(preview) <= 200 else preview[:199] + "…"
    images = count_images(messages)
    earlier = sum(1 for m in messages[:-1] if m.get("role") == "user")
    lines = [
        f"**Stand-in answer** to: “{preview}”",
        "",
        f"- model: `{body['model']}`",
        f"- messages received: {len(messages)} ({earlier} earlier questions), images: {images}",
    ]
    if isinstance(content, list) and len(content) > 1:
        kinds = [b.get("type", "?") for b in content if isinstance(b, dict)]
        lines.append(f"- this question's blocks: {', '.join(f'{kinds.count(k)} {k}' for k in dict.fromkeys(kinds))}")
    if body.get("system"):
        lines.append(f"- system prompt: “{text_of_content(body['system'])[:200]}”")
    lines += [f"- image {i}: {describe_image(block)}" for i, block in enumerate(image_blocks(messages), 1)]
    lines += [f"- document {i}: {describe_document(block)}" for i, block in enumerate(document_blocks(messages), 1)]
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] if isinstance(content, list) else []
    lines += [f"- tool result{' (error)' if r.get('is_error') else ''}: {text_of_content(r.get('content', ''))}" for r in results]
    return "\n".join([*lines, "", STAND_IN_NOTE])


def split_into_deltas(text: str) -> list[str]:
    """Pieces of one or two words with their trailing space, as a model streams them."""
    words = re.findall(r"\S+\s*|\s+", text)
    return ["".join(words[i : i + 2]) for i in range(0, len(words), 2)] or [""]


CALL_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Blocks a model writes as calls: their input streams as JSON, and each counts a token."""


@dataclass(frozen=True)
class Part:
    """One content block of an answer: text and the citations it carries, or a whole block (a
    call, whose input streams as JSON; a server tool's result, sent complete, counting no token).
    A text part is planned with ``text`` and generated as ``deltas``."""

    text: str = ""
    citations: tuple[dict[str, Any], ...] = ()
    block: dict[str, Any] | None = None
    deltas: tuple[str, ...] = ()

    @property
    def is_call(self) -> bool:
        return self.block is not None and self.block.get("type") in CALL_BLOCKS


@dataclass(frozen=True)
class Generated:
    """An answer as generated: the deltas of its thinking (none: no block), its parts in order,
    and why it ended."""

    thinking: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None

    @property
    def text(self) -> tuple[str, ...]:
        """The deltas of every text part, in order."""
        return tuple(delta for part in self.parts for delta in part.deltas)

    @property
    def tool_use(self) -> dict[str, Any] | None:
        """The client tool call the answer ends with, if any."""
        return next((p.block for p in self.parts if p.block is not None and p.block.get("type") == "tool_use"), None)

    @property
    def output_tokens(self) -> int:
        """One token a delta, one a call and one for the matched stop sequence (generated,
        though not sent), so a finished answer never counts 0."""
        return len(self.thinking) + len(self.text) + sum(p.is_call for p in self.parts) + (self.stop_sequence is not None)


def generate(thinking: str | None, parts: Sequence[Part], *, max_tokens: int, stop_sequences: Sequence[str] = ()) -> Generated:
    """The answer produced under the request's limits: the text stops before the first stop
    sequence to complete in it (dropping the parts that would have followed); everything stops
    once ``max_tokens`` tokens are out, thinking included (see :attr:`Generated.output_tokens`)."""
    thinking_deltas = tuple(split_into_deltas(thinking)) if thinking else ()
    generated: list[Part] = []
    matched = None
    for part in parts:
        if part.block is not None:
            generated.append(part)
            continue
        text, matched = cut_at_stop_sequence(part.text, stop_sequences)
        if text:
            generated.append(replace(part, deltas=tuple(split_into_deltas(text))))
        if matched is not None:
            break
    calls_tool = any(p.block is not None and p.block.get("type") == "tool_use" for p in generated)
    stop = "stop_sequence" if matched is not None else "tool_use" if calls_tool else "end_turn"
    whole = Generated(thinking_deltas, tuple(generated), stop, matched)
    if whole.output_tokens <= max_tokens:
        return whole
    return Generated(thinking_deltas[:max_tokens], _within(generated, max_tokens - len(thinking_deltas)), "max_tokens")


def _within(parts: list[Part], room: int) -> tuple[Part, ...]:
    """The parts that fit in ``room`` tokens, the last text cut short."""
    kept: list[Part] = []
    for part in parts:
        if room <= 0:
            break
        if part.block is None:
            kept.append(replace(part, deltas=part.deltas[:room]))
            room -= len(kept[-1].deltas)
        else:
            kept.append(part)
            room -= part.is_call
    return tuple(kept)


def cut_at_stop_sequence(text: str, stop_sequences: Sequence[str]) -> tuple[str, str | None]:
    """``text`` up to the stop sequence whose end comes first in it (generation stops there),
    and that sequence; or ``text`` whole and None."""
    found = [(text.index(s) + len(s), text.index(s), s) for s in stop_sequences if s in text]
    if not found:
        return text, None
    _, start, sequence = min(found)
    return text[:start], sequence


