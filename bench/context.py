"""Attachment preparation cost: DataFrame summaries by frame size, and large images.

Summaries of 20-column frames from 10^3 to 10^7 rows: time and size must stay flat in size
and near-flat in time as rows grow (statistics are sampled past 100,000 rows). Wide frames, 500
to 5,000 columns (pandas and polars): the cost follows the columns shown, so the 5,000/500
ratio stays near 1 (it was 9.3 for pandas when every column was described). Images: a
4000×3000 matplotlib figure and a 4000×3000 photograph-like image, brought within the API's
limits (long edge 1568 px).

    .venv/bin/python bench/context.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from claude_magic.attach.registry import attach


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data: dict[str, Any] = {f"x{i}": rng.normal(size=rows) for i in range(16)}
    data["region"] = pd.Categorical(rng.choice(["north", "south", "east", "west"], rows))
    data["flag"] = rng.random(rows) > 0.5
    data["label"] = rng.choice(np.array(["alpha", "beta", "gamma"], dtype=object), rows)
    data["when"] = pd.date_range("2020-01-01", periods=rows, freq="s")
    return pd.DataFrame(data)


def wide(columns: int, library: str) -> Any:
    rng = np.random.default_rng(0)
    data = {f"c{i}": rng.normal(size=1000) for i in range(columns)}
    if library == "polars":
        import polars as pl

        return pl.DataFrame(data)
    return pd.DataFrame(data)


def timed(work: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    print("DataFrame summaries (20 columns), median of 3")
    for exponent in range(3, 8):
        rows = 10**exponent
        seconds, attachment = timed(lambda data=frame(rows): attach("`df`", data))
        print(f"  10^{exponent} rows: {seconds * 1000:8.1f} ms, {len(attachment.text):6,} characters")
    print("Wide frames (1,000 rows), median of 3")
    for library in ("pandas", "polars"):
        narrow, _ = timed(lambda library=library: attach("`df`", wide(500, library)))
        broad, _ = timed(lambda library=library: attach("`df`", wide(5000, library)))
        print(f"  {library}: 500 columns {narrow * 1000:7.1f} ms, 5,000 columns {broad * 1000:7.1f} ms, ratio {broad / narrow:.2f}")
    figure = plt.figure(figsize=(40, 30), dpi=100)
    axes = figure.gca()
    for k in range(20):
        axes.plot(np.cumsum(np.random.default_rng(k).normal(size=2000)))
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 255, (750, 1000, 3), dtype=np.uint8)).resize((4000, 3000))
    print("Images, median of 3")
    for name, obj in (("4000×3000 matplotlib figure", figure), ("4000×3000 photograph", photo)):
        seconds, attachment = timed(lambda obj=obj: attach("`img`", obj))
        print(f"  {name}: {seconds * 1000:8.1f} ms -> {attachment.size()}")


if __name__ == "__main__":
    main()
