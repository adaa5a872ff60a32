"""A long conversation with images, in a real kernel against the stand-in (which refuses
requests over the API's 32 MB): every question is answered, the oldest images leave the
requests (and the footer says how many), and a finished question's request is let go of
without waiting for a garbage collection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kernel_harness import Kernel

from claude_magic.api.settings import MAX_REQUEST_BYTES
from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-long-conversation-key-71c3e9"
SETUP = """
import gc, io, tracemalloc
import numpy as np
from PIL import Image

def noise_png(seed):
    '''About 1 MB of PNG: noise does not compress.'''
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (580, 580, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
"""
TURNS = 32
MB = 2**20


@dataclass
class Conversation:
    sizes: list[int]
    """The size of every request the stand-in received, in order."""
    footers: list[str]


@pytest.fixture(scope="module")
def conversation(kernel: Kernel, server: StandIn) -> Iterator[Conversation]:
    """Ask :data:`TURNS` questions, each attaching a different ~1 MB PNG."""
    sizes, footers = [], []
    for n in range(TURNS):
        result = kernel.run(f"img = noise_png({n})\n%claude -a img Turn {n}: what is in this image?")
        assert result.status == "ok" and not result.stderr, (n, result.outputs)
        sizes += [r.size for r in server.message_requests]
        footers.append(result.displays()[-1]["data"]["text/plain"])
        server.reset()  # the stand-in keeps what it receives: 30 MB a request
    yield Conversation(sizes, footers)


def test_every_question_is_answered_and_no_request_passes_the_limit(conversation: Conversation) -> None:
    assert len(conversation.sizes) == TURNS  # one request each: none refused and retried
    assert max(conversation.sizes) < MAX_REQUEST_BYTES
    assert max(conversation.sizes) > 20 * MB  # the images the budget kept are sent


def test_the_footer_says_how_many_earlier_images_were_not_sent(conversation: Conversation) -> None:
    assert "not sent" not in conversation.footers[0]
    last = conversation.footers[-1]
    assert "earlier images not sent" in last and "earlier turn" not in last  # images leave; turns stay
    left_out = int(last.split(" earlier images not sent")[0].rsplit(" ", 1)[-1])
    assert 0 < left_out < TURNS - 1


def test_a_finished_questions_request_is_let_go_without_a_garbage_collection(conversation: Conversation, kernel: Kernel, server: StandIn) -> None:
    """Python allocations kept after a question: its image and answer, not its request; nor
    was the request ever whole in memory."""
    result = kernel.run(
        "img = noise_png(1000)\n"
        "gc.disable(); tracemalloc.start(); _before = tracemalloc.get_traced_memory()[0]\n"
        "%claude -a img One more: what is in this image?\n"
        "_after, _peak = tracemalloc.get_traced_memory(); tracemalloc.stop(); gc.enable()\n"
        "print(_after - _before, _peak - _before)"
    )
    assert result.status == "ok", result.outputs
    kept, peak = map(int, result.stdout.split())
    assert server.message_requests[-1].size > 20 * MB
    assert kept < 4 * MB  # the image's base64 (1.3 MB) and the answer
    assert peak < 8 * MB
