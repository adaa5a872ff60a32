"""Bounded text summaries of DataFrames and Series (pandas and polars) for Claude.

Whatever the frame's size, the summary's size is capped by a character budget and its cost
by sampling: statistics over more than ``STATS_ROWS`` rows are computed on evenly spaced rows
(and say so), null counts are exact, and only a handful of rows are ever turned into text.
Wide frames are bounded the same way: only the columns the budget has room for are looked at
(:func:`columns_shown`), so 5,000 columns cost what the few hundred shown cost.
Each library has a small adapter that produces a :class:`FrameFacts`; one renderer writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STATS_ROWS = 100_000
"""Rows used for describe() and top values; more are sampled evenly."""
EXACT_NULLS_ROWS = 1_000_000
"""Up to this many rows nulls are counted exactly (pandas); past it, estimated from the sample."""
LOW_CARDINALITY = 20
"""Columns with at most this many distinct values get their top values listed."""
TOP_VALUES = 5
SAMPLE_ROWS = 5
"""Rows shown from the head and from the tail."""
CELL_CHARS = 60
COLUMN_ROW_CHARS = 24
"""About the fewest characters a column's row in the columns table takes."""
DETAIL_COLUMN_CHARS = 100
"""About what one column adds to the statistics table and the sample rows together."""
POLARS_STATS = ("count", "null_count", "mean", "std", "min", "25%", "50%", "75%", "max")


@dataclass
class Column:
    name: str
    dtype: str
    nulls: int
    top_values: list[tuple[str, int]] | None = None


@dataclass
class FrameFacts:
    """What a summary says about a frame, independent of the library it came from."""

    kind: str
    rows: int
    columns: list[Column]
    total_columns: int
    """All the frame's columns; ``columns`` are the first ones, those the budget has room for."""
    stats_header: list[str] = field(default_factory=list)
    stats_rows: list[list[str]] = field(default_factory=list)
    stats_sampled_from: int | None = None
    nulls_estimated: bool = False
    head: list[list[str]] = field(default_factory=list)
    tail: list[list[str]] = field(default_factory=list)


def is_frame(obj: Any) -> bool:
    return _qualname(obj) in _ADAPTERS


def summarise(obj: Any, budget: int) -> tuple[str, str]:
    """(kind, summary text of at most ``budget`` characters) for a DataFrame or Series."""
    facts = _ADAPTERS[_qualname(obj)](obj, budget)
    return facts.kind, render(facts, budget)


def columns_shown(total: int, budget: int) -> tuple[int, int]:
    """How many of the first columns get a row in the columns table, and how many of those also
    get statistics and sample values: what half the ``budget`` each has room for."""
    described = min(total, max(1, budget // 2 // COLUMN_ROW_CHARS))
    return described, min(described, max(1, budget // 2 // DETAIL_COLUMN_CHARS))


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


def _stride(rows: int) -> int:
    return max(1, -(-rows // STATS_ROWS))


def _cell(value: Any) -> str:
    text = str(value).replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


# --- pandas ------------------------------------------------------------------------------------


def _pandas_facts(obj: Any, budget: int) -> FrameFacts:
    whole = obj.to_frame() if obj.ndim == 1 else obj
    kind = "pandas Series" if obj.ndim == 1 else "pandas DataFrame"
    described, detailed = columns_shown(whole.shape[1], budget)
    frame = whole.iloc[:, :described]
    rows = len(frame)
    stride = _stride(rows)
    sample = frame.iloc[::stride]
    estimated = rows > EXACT_NULLS_ROWS
    nulls = sample.isna().sum() * (rows / len(sample)) if estimated else frame.isna().sum()
    columns = [Column(str(name), str(dtype), round(nulls.iloc[i])) for i, (name, dtype) in enumerate(frame.dtypes.items())]
    facts = FrameFacts(kind, rows, columns, whole.shape[1], stats_sampled_from=rows if stride > 1 else None, nulls_estimated=estimated)
    numeric = sample.iloc[:, :detailed].select_dtypes(include="number")
    if numeric.shape[1]:
        described = numeric.describe()
        facts.stats_header = ["stat", *(str(c) for c in described.columns)]
        facts.stats_rows = [[str(stat), *(_number(v) for v in values)] for stat, values in zip(described.index, described.to_numpy(), strict=True)]
    for position, column in enumerate(columns):
        series = sample.iloc[:, position]
        if series.dtype.kind in "OSUbc" or str(series.dtype) in ("category", "string", "bool"):
            counts = series.value_counts(dropna=True)
            if 0 < len(counts) <= LOW_CARDINALITY:
                column.top_values = [(_cell(k), int(v)) for k, v in counts.head(TOP_VALUES).items()]
    shown = frame.iloc[:, :detailed]
    facts.head = [[_cell(v) for v in row] for row in shown.head(SAMPLE_ROWS).itertuples(index=False)]
    if rows > SAMPLE_ROWS:
        facts.tail = [[_cell(v) for v in row] for row in shown.tail(min(SAMPLE_ROWS, rows - SAMPLE_ROWS)).itertuples(index=False)]
    return facts


# --- polars ------------------------------------------------------------------------------------


def _polars_facts(obj: Any, budget: int) -> FrameFacts:
    is_series = type(obj).__name__ == "Series"
    whole = obj.to_frame() if is_series else obj
    kind = "polars Series" if is_series else "polars DataFrame"
    described, detailed = columns_shown(whole.width, budget)
    frame = whole.select(whole.columns[:described])
    rows = frame.height
    stride = _stride(rows)
    sample = frame.gather_every(stride) if stride > 1 else frame
    null_counts = frame.null_count().row(0)
    columns = [Column(name, str(dtype), int(n)) for (name, dtype), n in zip(frame.schema.items(), null_counts, strict=True)]
    facts = FrameFacts(kind, rows, columns, whole.width, stats_sampled_from=rows if stride > 1 else None)
    numeric = [c.name for c, dtype in zip(columns[:detailed], frame.dtypes, strict=False) if dtype.is_numeric()]
    if numeric:
        facts.stats_header = ["stat", *numeric]
        facts.stats_rows = _polars_statistics(sample, numeric)
    for column, dtype in zip(columns, frame.dtypes, strict=True):
        if dtype.is_numeric() or dtype.is_temporal():
            continue
        counts = sample.get_column(column.name).drop_nulls().value_counts(sort=True)
        if 0 < counts.height <= LOW_CARDINALITY:
            column.top_values = [(_cell(k), int(v)) for k, v in counts.head(TOP_VALUES).rows()]
    shown = frame.select(frame.columns[:detailed])
    facts.head = [[_cell(v) for v in row] for row in shown.head(SAMPLE_ROWS).rows()]
    if rows > SAMPLE_ROWS:
        facts.tail = [[_cell(v) for v in row] for row in shown.tail(min(SAMPLE_ROWS, rows - SAMPLE_ROWS)).rows()]
    return facts


def _polars_statistics(sample: Any, numeric: list[str]) -> list[list[str]]:
    """describe()'s rows, as one flat ``select`` (polars' own describe() grows much faster
    than linearly with the number of columns)."""
    import polars as pl

    def statistic(name: str, column: Any) -> Any:
        quantiles = {"25%": 0.25, "50%": 0.5, "75%": 0.75}
        if name in quantiles:
            return column.quantile(quantiles[name], "nearest")
        return getattr(column, name)()

    expressions = [statistic(stat, pl.col(c).cast(pl.Float64)).alias(f"{stat}\0{c}") for stat in POLARS_STATS for c in numeric]
    values = iter(sample.select(expressions).row(0))
    return [[stat, *(_number(next(values)) for _ in numeric)] for stat in POLARS_STATS]


_ADAPTERS = {
    "pandas.DataFrame": _pandas_facts,
    "pandas.Series": _pandas_facts,
    "polars.DataFrame": _polars_facts,
    "polars.Series": _polars_facts,
}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return _cell(value)


# --- rendering ---------------------------------------------------------------------------------


def render(facts: FrameFacts, budget: int) -> str:
    """The summary as Markdown-ish text; parts are dropped, least useful last, to fit ``budget``."""
    names = [c.name for c in facts.columns]
    parts = [
        f"{facts.kind}: {facts.rows:,} rows × {facts.total_columns:,} columns",
        _columns_table(facts.columns, facts.nulls_estimated, facts.total_columns),
    ]
    optional = []
    if facts.stats_rows:
        note = f" (from {facts.rows // _stride(facts.rows):,} evenly spaced rows of {facts.stats_sampled_from:,})" if facts.stats_sampled_from else ""
        optional.append(f"Numeric columns{note}:\n" + _table(facts.stats_header, facts.stats_rows))
    if facts.head:
        optional.append(f"First {len(facts.head)} rows:\n" + _table(names, facts.head))
    if facts.tail:
        optional.append(f"Last {len(facts.tail)} rows:\n" + _table(names, facts.tail))
    text = "\n\n".join(parts)
    for part in optional:
        if len(text) + 2 + len(part) <= budget:
            text += "\n\n" + part
    return text if len(text) <= budget else _truncate(text, budget)


def _columns_table(columns: Sequence[Column], estimated: bool, total: int) -> str:
    rows = [
        [c.name, c.dtype, f"{'~' if estimated and c.nulls else ''}{c.nulls:,}", ", ".join(f"{v} ({n:,})" for v, n in c.top_values) if c.top_values else ""]
        for c in columns
    ]
    note = " (null counts estimated from evenly spaced rows)" if estimated else ""
    which = f" (the first {len(columns):,} of {total:,}; the others are not described)" if total > len(columns) else ""
    return f"Columns{which}{note}:\n" + _table(["column", "dtype", "nulls", "top values"], rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _truncate(text: str, budget: int) -> str:
    note = "\n… (summary cut to fit the character budget)"
    return text[: max(0, budget - len(note))] + note
