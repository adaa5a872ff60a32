"""Attaching kernel objects: the registry, DataFrame summaries, images within the API's limits."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from PIL import Image

from claude_magic.api.media import MAX_ENCODED_BYTES, image_size
from claude_magic.attach import frames
from claude_magic.attach.images import MAX_LONG_EDGE, ImageError
from claude_magic.attach.registry import Attachment, AttachmentError, attach
from claude_magic.magics import dry_run


def decoded(attachment: Attachment) -> Image.Image:
    block = attachment.blocks()[1]
    return Image.open(io.BytesIO(base64.b64decode(block["source"]["data"])))


def png_bytes(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    return Image.fromarray(np.stack(np.broadcast_arrays(x[None, :], y[:, None], np.full((height, width), 128, np.uint8)), axis=-1))


# --- images -------------------------------------------------------------------------------------


def test_small_image_bytes_are_sent_unchanged() -> None:
    data = png_bytes(gradient(300, 200))
    attachment = attach("`img`", data)
    assert attachment.image is not None and attachment.image.data == data
    assert attachment.blocks()[1]["source"]["media_type"] == "image/png"


@pytest.mark.parametrize("size", [(4000, 3000), (1000, 5000)])
def test_large_images_are_scaled_to_the_long_edge_keeping_the_aspect(size: tuple[int, int]) -> None:
    attachment = attach("`big`", gradient(*size))
    image = decoded(attachment)
    assert max(image.size) == MAX_LONG_EDGE
    assert abs(image.size[0] / image.size[1] - size[0] / size[1]) < 0.01
    assert attachment.image.source_size == size


def test_scaled_content_matches_the_source() -> None:
    source = gradient(3136, 2000)
    sent = decoded(attach("`g`", source)).convert("RGB")
    expected = source.resize(sent.size)
    assert np.abs(np.asarray(sent, dtype=int) - np.asarray(expected, dtype=int)).mean() < 3


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "1", "LA", "F"])
def test_modes_the_api_cannot_take_are_converted(mode: str) -> None:
    source = gradient(64, 48).convert("L").convert(mode) if mode in ("I;16", "F", "1", "LA") else gradient(64, 48).convert(mode)
    image = decoded(attach("`m`", source))
    assert image.mode in ("RGB", "RGBA", "L") and image.size == (64, 48)


def test_photographs_may_go_to_jpeg_and_flat_plots_stay_png() -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).resize((2400, 1800))
    assert attach("`photo`", photo).image.media_type == "image/jpeg"
    flat = Image.new("RGB", (2400, 1800), "white")
    assert attach("`flat`", flat).image.media_type == "image/png"


def test_encoded_size_stays_under_the_limit() -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (1568, 1568, 4), dtype=np.uint8), mode="RGBA")
    prepared = attach("`noise`", noise).image
    assert len(base64.b64encode(prepared.data)) <= MAX_ENCODED_BYTES


@pytest.mark.parametrize("shape", [(40, 60), (40, 60, 3), (40, 60, 4)])
def test_uint8_arrays_are_images(shape: tuple[int, ...]) -> None:
    array = np.random.default_rng(2).integers(0, 255, shape, dtype=np.uint8)
    attachment = attach("`arr`", array)
    assert attachment.image is not None
    assert np.array_equal(np.asarray(decoded(attachment)), array)


def test_other_arrays_are_summarised() -> None:
    attachment = attach("`x`", np.arange(10_000, dtype=np.float64).reshape(100, 100))
    assert attachment.image is None
    assert "shape (100, 100), dtype float64" in attachment.text and "mean 4999.5" in attachment.text


def test_matplotlib_figures_and_axes() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 3), dpi=100)
    axes.plot([1, 3, 2])
    for obj in (figure, axes):
        image = decoded(attach("`fig`", obj))
        assert image.format == "PNG" and 300 <= image.size[0] <= 400
    plt.close(figure)


def test_image_files_and_ipython_images(tmp_path: Path) -> None:
    from IPython.display import Image as IPythonImage

    path = tmp_path / "chart.jpg"
    gradient(120, 80).save(path, format="JPEG")
    assert attach("`p`", path).image.data == path.read_bytes()
    assert attach("`p`", str(path)).image.media_type == "image/jpeg"
    assert attach("`i`", IPythonImage(filename=str(path))).image.data == path.read_bytes()
    assert attach("`i`", IPythonImage(data=path.read_bytes())).image.data == path.read_bytes()


def test_unreadable_images_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="can't read the image file"):
        attach("`p`", tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageError, match="can't read the image"):
        attach("`p`", tmp_path / "broken.png")


def test_image_size_reads_headers_without_pillow() -> None:
    for image_format in ("PNG", "JPEG", "GIF", "WEBP"):
        assert image_size(png_bytes(gradient(321, 123), image_format)) == (321, 123)
    assert image_size(base64.b64encode(png_bytes(gradient(5, 7))).decode()) == (5, 7)


# --- data ---------------------------------------------------------------------------------------


def wide_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    data = {f"num_{i}": rng.normal(size=rows) for i in range(15)}
    data.update({f"cat_{i}": pd.Categorical(rng.choice(["north", "south", "east"], rows)) for i in range(3)})
    data["text"] = np.array(["row %d" % i for i in range(min(rows, 1000))] * (rows // min(rows, 1000)))[:rows]
    data["when"] = pd.date_range("2026-01-01", periods=rows, freq="min")
    return pd.DataFrame(data)


def test_dataframe_summary_names_every_column_and_fits_the_budget() -> None:
    frame = wide_frame(10_000)
    frame.loc[::10, "num_0"] = np.nan
    text = attach("`df`", frame, budget=20_000).text
    assert len(text) <= 20_000
    assert "10,000 rows × 20 columns" in text
    for column in frame.columns:
        assert f"| {column} |" in text
    assert "| num_0 | float64 | 1,000 |" in text
    assert "north (" in text and "First 5 rows" in text and "Last 5 rows" in text


def test_a_small_budget_drops_the_least_useful_parts_first() -> None:
    text = attach("`df`", wide_frame(1000), budget=2000).text
    assert len(text) <= 2000
    assert "1,000 rows × 20 columns" in text


def test_a_million_rows_summarise_fast_and_say_they_were_sampled() -> None:
    frame = wide_frame(1_000_000)
    started = time.perf_counter()
    text = attach("`df`", frame).text
    assert time.perf_counter() - started < 1.0
    assert "evenly spaced rows of 1,000,000" in text and len(text) <= 20_000


def test_series_and_polars() -> None:
    assert "pandas Series: 3 rows × 1 columns" in attach("`s`", pd.Series([1, 2, 3], name="s")).text
    frame = pl.DataFrame({"a": [1, 2, None], "b": ["x", "y", "x"]})
    text = attach("`pl`", frame).text
    assert "polars DataFrame: 3 rows × 2 columns" in text and "| a | Int64 | 1 |" in text and "x (2)" in text
    assert "polars Series" in attach("`ps`", pl.Series("v", [1.5, 2.5])).text
    assert frames.is_frame(frame) and not frames.is_frame([1])


def test_objects_that_describe_themselves_come_first() -> None:
    class Described:
        def _repr_llm_(self) -> str:
            return "I describe myself"

    assert attach("`d`", Described()).text == "I describe myself"
    assert attach("`f`", pd.DataFrame({"a": [1]}), llm_formatter=lambda obj: "formatter text").text == "formatter text"


def test_containers_text_and_anything_else_are_bounded() -> None:
    big = {f"key{i}": list(range(100)) for i in range(500)}
    assert len(attach("`big`", big, budget=1000).text) <= 1100
    long_text = "word " * 10_000
    text = attach("`t`", long_text, budget=500).text
    assert text.startswith("word word") and "more characters not sent" in text

    class Thing:
        def __repr__(self) -> str:
            return "<Thing " + "x" * 100_000 + ">"

    assert len(attach("`thing`", Thing(), budget=1000).text) < 3000


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_a_wide_frame_describes_the_columns_its_budget_shows(library: str) -> None:
    data = {f"c{i}": [float(i), None] for i in range(5000)}
    frame = pd.DataFrame(data) if library == "pandas" else pl.DataFrame(data)
    text = attach("`wide`", frame, budget=20_000).text
    assert f"{library} DataFrame: 2 rows × 5,000 columns" in text
    assert "(the first 416 of 5,000; the others are not described)" in text
    assert "| c415 | Float64 | 1 |" in text.replace("float64", "Float64") and "c416" not in text
    assert len(text) <= 20_000 and "| mean |" in text  # statistics for the first columns fit beside the list


class SaysItself:
    def _repr_llm_(self) -> str:
        raise ValueError("no words\ntoday")


def test_an_object_whose_own_description_fails_is_refused_in_one_line() -> None:
    with pytest.raises(AttachmentError, match=r"^can't attach `me`: its _repr_llm_\(\) raised ValueError: no words$"):
        attach("`me`", SaysItself())


def test_a_library_failing_on_an_object_is_refused_in_one_line() -> None:
    class Odd(dict):  # type: ignore[type-arg]
        def __len__(self) -> int:
            raise RuntimeError("odd mapping")

    with pytest.raises(AttachmentError, match=r"^can't attach `odd`: describing it raised RuntimeError: odd mapping$"):
        attach("`odd`", Odd(a=1))


def test_an_object_that_cannot_be_attached_is_named() -> None:
    with pytest.raises(AttachmentError):
        from claude_magic.attach.notebook import NotebookContext

        NotebookContext(lambda e: False).error(100)


def test_dry_run_hides_image_data_and_estimates_tokens() -> None:
    block = attach("`img`", gradient(750, 100)).blocks()[1]
    body = {"messages": [{"role": "user", "content": [block, {"type": "text", "text": "x" * 400}]}]}
    shown = dry_run.without_image_data(body)
    assert "base64 not shown" in shown["messages"][0]["content"][0]["source"]["data"]
    assert body["messages"][0]["content"][0]["source"]["data"] == block["source"]["data"]
    assert 190 <= dry_run.local_estimate(body) <= 230  # 750×100/750 for the image, ~107 for the text block
