"""Attachments through a real kernel: what reached the server, decoded, for every kind of object."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from kernel_harness import CellResult, Kernel
from PIL import Image

from claude_magic.testing import StandIn

pytestmark = pytest.mark.kernel

KEY = "sk-ant-context-test-key-5e1d2c3b4a"
SETUP = """
import io, numpy as np, pandas as pd, polars as pl
from pathlib import Path
from PIL import Image as PILImage
import matplotlib.pyplot as plt
%matplotlib inline
"""


@pytest.fixture(autouse=True)
def fresh(kernel: Kernel, server: StandIn) -> None:
    kernel.run("get_ipython().magics_manager.registry['ClaudeMagics'].session.conversation.clear()")
    server.reset()


def sent_blocks(server: StandIn) -> list[dict[str, Any]]:
    return server.message_requests[-1].messages[-1]["content"]


def sent_images(server: StandIn) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b["source"]["data"]))) for b in sent_blocks(server) if b["type"] == "image"]


def sent_text(server: StandIn) -> str:
    return "\n".join(b["text"] for b in sent_blocks(server) if b["type"] == "text")


def ask(kernel: Kernel, code: str) -> CellResult:
    result = kernel.run(code)
    assert result.status == "ok", result.outputs
    return result


@pytest.mark.parametrize(
    ("setup", "kind"),
    [
        ("obj = plt.figure(figsize=(50, 40), dpi=100); obj.gca().imshow(np.indices((300, 400)).sum(0)); plt.close(obj)", "matplotlib Figure"),
        ("_f, obj = plt.subplots(); obj.plot([1, 4, 2]); plt.close(_f)", "matplotlib Axes"),
        ("obj = PILImage.fromarray(np.indices((3000, 4000)).sum(0).astype(np.uint8))", "PIL Image"),
        ("obj = PILImage.new('CMYK', (300, 200), (0, 128, 255, 0))", "PIL Image, mode CMYK"),
        ("obj = (np.indices((2000, 2500, 3)).sum(0) % 256).astype(np.uint8)", "numpy uint8 array"),
        ("_b = io.BytesIO(); PILImage.new('RGB', (640, 480), 'teal').save(_b, 'WEBP'); obj = _b.getvalue()", "image bytes"),
        ("from IPython.display import Image as IPImage; _b = io.BytesIO(); PILImage.new('RGB', (64, 64), 'red').save(_b, 'GIF'); obj = IPImage(data=_b.getvalue())", "IPython Image"),
        ("obj = Path('/tmp/claude_magic_test_image.jpg'); PILImage.new('RGB', (2000, 1000), 'navy').save(obj)", "image file"),
    ],
)
def test_every_image_kind_reaches_the_server_within_limits(kernel: Kernel, server: StandIn, setup: str, kind: str) -> None:
    ask(kernel, setup)
    ask(kernel, "%claude -a obj What is in this image?")
    (image,) = sent_images(server)
    assert max(image.size) <= 1568
    assert image.format in ("PNG", "JPEG", "GIF", "WEBP")
    assert kind in sent_text(server)
    assert "image 1: image/" in server.message_requests[-1].answer  # the stand-in saw it


def test_image_content_matches_its_source(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "src = (np.indices((3000, 2000)).sum(0) % 256).astype(np.uint8)")
    ask(kernel, "%claude -a src gradient?")
    (image,) = sent_images(server)
    assert image.size == (1045, 1568)
    source = Image.fromarray((np.indices((3000, 2000)).sum(0) % 256).astype(np.uint8)).resize(image.size)
    assert np.abs(np.asarray(image.convert("L"), dtype=int) - np.asarray(source, dtype=int)).mean() < 8


def test_fig_attaches_exactly_the_png_the_earlier_cell_displayed(kernel: Kernel, server: StandIn) -> None:
    shown = kernel.run("plt.plot([3, 1, 2]); plt.title('dip in March')")
    png = next(o["data"]["image/png"] for o in shown.displays() if "image/png" in o["data"])
    count = shown.reply["execution_count"]
    kernel.run("x = 1")  # an unrelated cell in between
    ask(kernel, "%%claude --fig\nWhat does this trend show?")
    assert sent_blocks(server)[1]["source"]["data"] == png
    assert f"displayed by cell [{count}]" in sent_text(server)
    ask(kernel, f"%claude --fig {count} and that one?")
    assert f"displayed by cell [{count}]" in sent_text(server)


def test_fig_errors_are_one_line(kernel: Kernel, server: StandIn) -> None:
    result = kernel.run("%claude --fig 9999 anything?")
    assert "no image from cell [9999]" in result.error["evalue"] and len(result.error["traceback"]) == 1
    assert server.requests == []


def test_dataframes_are_summaries_naming_every_column(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "df = pd.DataFrame({f'col_{i}': np.random.rand(200_000) for i in range(20)}); df['region'] = 'north'")
    ask(kernel, "%config ClaudeMagics.attachment_chars = 8000")
    ask(kernel, "%%claude -a df\nWhich columns explain the dip?")
    text = sent_text(server)
    assert "`df` (pandas DataFrame)" in text and "200,000 rows × 21 columns" in text
    assert all(f"| col_{i} |" in text for i in range(20)) and "| region |" in text
    assert len(sent_blocks(server)[0]["text"]) <= 8000 + 100
    ask(kernel, "%config ClaudeMagics.attachment_chars = 20000")


def test_polars_series_arrays_containers_text_and_repr(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "p = pl.DataFrame({'a': [1, 2], 'b': ['x', 'y']}); s = pd.Series([1.5, 2.5], name='s'); arr = np.linspace(0, 1, 50)\n"
                "d = {'alpha': 0.1, 'layers': [64, 32]}; note = 'remember the holidays'; r = range(3)")
    ask(kernel, "%claude -a p,s -a arr -a d,note,r compare them")
    text = sent_text(server)
    for expected in ("polars DataFrame: 2 rows × 2 columns", "pandas Series: 2 rows", "shape (50,), dtype float64", "{'alpha': 0.1, 'layers': [64, 32]}", "remember the holidays", "range(0, 3)"):
        assert expected in text
    assert text.index("`p`") < text.index("`arr`") < text.index("`note`") < text.index("compare them")


def test_repr_llm_objects_describe_themselves(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "class Model:\n    def _repr_llm_(self):\n        return 'a model with 3 layers'\nm = Model()")
    ask(kernel, "%claude -a m explain")
    assert "a model with 3 layers" in sent_text(server)


def test_recent_cells_and_the_last_error(kernel: Kernel, server: StandIn) -> None:
    kernel.run("total = sum(range(10))\ntotal")
    failing = kernel.run("values = [1, 2]\nvalues[5]")
    assert failing.status == "error"
    ask(kernel, "%claude --recent 2 --error why did this fail?")
    text = sent_text(server)
    assert "total = sum(range(10))" in text and "Out[" in text and "45" in text
    assert "IndexError: list index out of range" in text and "values[5]" in text
    assert "\x1b[" not in text and "interactiveshell" not in text


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("%claude -a nope hi", "-a nope: no variable 'nope'"),
        ("%claude -a missing_file hi", "can't read the image file"),
        ("%claude -a bad_bytes hi", "can't read the image"),
    ],
)
def test_attachment_errors_are_one_line_and_send_nothing(kernel: Kernel, server: StandIn, code: str, message: str) -> None:
    kernel.run("missing_file = '/tmp/no/such/plot.png'; bad_bytes = b'\\x89PNG\\r\\n\\x1a\\n' + b'0' * 20")
    result = kernel.run(code)
    assert message in result.error["evalue"] and len(result.error["traceback"]) == 1
    assert server.message_requests == []


def test_an_image_is_sent_in_full_once_and_stays_in_the_history(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "img = PILImage.new('RGB', (320, 200), 'orange')")
    ask(kernel, "%claude -a img what colour?")
    ask(kernel, "%claude and its size?")
    ask(kernel, "%claude -a img look again")
    history = server.message_requests[-1].messages
    images = [b for m in history if isinstance(m["content"], list) for b in m["content"] if b["type"] == "image"]
    assert len(images) == 1  # the first question's image, sent back as history
    assert "same image as one earlier in this conversation" in sent_text(server)


def test_an_image_whose_first_copy_was_left_out_is_sent_again(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "img = PILImage.new('RGB', (320, 200), 'purple')")
    ask(kernel, "%claude -a img what colour?")
    ask(kernel, "%config ClaudeMagics.context_budget = 1200")  # too small for the first turn's image
    try:
        ask(kernel, "%claude [[words=400]]")
        ask(kernel, "%claude -a img and now?")
    finally:
        ask(kernel, "%config ClaudeMagics.context_budget = None")
    history = server.message_requests[-1].messages
    assert sum(1 for m in history if isinstance(m["content"], list) for b in m["content"] if b["type"] == "image") == 1
    assert len(sent_images(server)) == 1  # in the question itself, in full


def test_dry_run_shows_sizes_tokens_and_thumbnails_never_base64(kernel: Kernel, server: StandIn) -> None:
    ask(kernel, "img = PILImage.new('RGB', (3000, 2000), 'green'); df = pd.DataFrame({'a': range(10)})")
    result = ask(kernel, "%claude --dry-run -a img,df describe")
    summary = result.displays()[0]["data"]["text/plain"]
    assert "1568×1045 px PNG" in summary and "scaled from 3000×2000" in summary and "pandas DataFrame" in summary
    assert "local estimate; nothing was sent" in summary
    thumbnails = [o for o in result.displays() if "image/png" in o["data"]]
    assert len(thumbnails) == 1 and max(Image.open(io.BytesIO(base64.b64decode(thumbnails[0]["data"]["image/png"]))).size) <= 160
    body = result.displays()[-1]["data"]["text/plain"]
    assert "base64 not shown" in body and len(body) < 20_000
    assert server.message_requests == []
