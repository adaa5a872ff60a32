"""Rows in and a result out: a pandas or polars DataFrame or Series, or any iterable, as the values
each row's placeholders are filled from; and the answers as the same kind of thing, one row per
input row, in the same order (pandas: with the same index, so ``df.join(result)`` lines up).

A DataFrame's columns fill ``{column}``; a Series, or an iterable of plain values, fills
``{item}`` (or the name given, and a Series' own name); an iterable of mappings fills its keys.
The values are kept by column, not as a dict a row, and a row's mapping is made when asked for:
a job of 100,000 rows holds its input once. pandas and polars are optional and imported only
when the input is one of theirs (``import claude_magic`` never loads them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.errors import ClaudeError

Kind = Literal["pandas", "polars", "list"]
ITEM = "item"


class RowsError(ClaudeError):
    """Rows that can't be asked over (said before anything is sent)."""


@dataclass
class Rows:
    """The rows of a job, by column, and how its result is made (:func:`result_like`)."""

    kind: Kind
    columns: dict[str, Sequence[Any]]
    length: int
    index: Any = None
    """pandas: the input's index, which the result takes."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Other names a column answers to (a Series' ``{item}`` and its own name)."""

    def __len__(self) -> int:
        return self.length

    @property
    def names(self) -> list[str]:
        """Every name a placeholder may use."""
        return [*self.columns, *self.aliases]

    def row(self, position: int) -> dict[str, Any]:
        """The values of row ``position`` (0-based), by every name they answer to."""
        values = {name: column[position] for name, column in self.columns.items()}
        return {**values, **{alias: values[name] for alias, name in self.aliases.items()}}

    def labels(self) -> list[Any]:
        """The rows' labels for the user: the pandas index, else positions."""
        return list(self.index) if self.index is not None else list(range(self.length))


def rows_of(data: Any, item: str = ITEM) -> Rows:
    """``data`` as :class:`Rows`; a :class:`RowsError` for what can't be rows."""
    if isinstance(data, (str, bytes)):
        raise RowsError(f"the rows are one {type(data).__name__}: give a list of them, a Series or a DataFrame")
    if not item.isidentifier():
        raise RowsError(f"item={item!r}: the name a row's value is filled in as must be a Python name")
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and "pandas" in sys.modules:
        return _pandas(data, item)
    if module == "polars" and "polars" in sys.modules:
        return _polars(data, item)
    if isinstance(data, Mapping):
        raise RowsError("the rows are a dict: give a list of dicts (one a row), or a DataFrame")
    if not isinstance(data, Iterable):
        raise RowsError(f"the rows must be a DataFrame, a Series or an iterable, not {type(data).__name__}")
    return _iterable(list(data), item)


def _pandas(data: Any, item: str) -> Rows:
    import pandas as pd  # type: ignore[import-untyped]

    if isinstance(data, pd.DataFrame):
        _unique(data.columns)
        columns = {str(name): data[name].tolist() for name in data.columns}
        return Rows("pandas", columns, len(data), data.index)
    if isinstance(data, pd.Series):
        return Rows("pandas", {item: data.tolist()}, len(data), data.index, _series_alias(data.name, item))
    return _iterable(list(data), item)


def _polars(data: Any, item: str) -> Rows:
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return Rows("polars", {name: data[name].to_list() for name in data.columns}, data.height)
    if isinstance(data, pl.Series):
        return Rows("polars", {item: data.to_list()}, data.len(), None, _series_alias(data.name, item))
    if isinstance(data, pl.LazyFrame):
        raise RowsError("the rows are a polars LazyFrame: .collect() it first (the job needs every row)")
    return _iterable(list(data), item)


def _series_alias(name: Any, item: str) -> dict[str, str]:
    return {name: item} if isinstance(name, str) and name.isidentifier() and name != item else {}


def _unique(names: Iterable[Any]) -> None:
    seen: set[str] = set()
    for name in map(str, names):
        if name in seen:
            raise RowsError(f"the DataFrame has two columns named {name!r}: a placeholder could not tell them apart")
        seen.add(name)


def _iterable(values: list[Any], item: str) -> Rows:
    if values and all(isinstance(value, Mapping) for value in values):
        names = list(dict.fromkeys(str(key) for value in values for key in value))
        return Rows("list", {name: [value.get(name) for value in values] for name in names}, len(values))
    return Rows("list", {item: values}, len(values))


# --- the result -----------------------------------------------------------------------------------


def result_like(rows: Rows, columns: dict[str, list[Any]]) -> Any:
    """The result: a DataFrame of the input's library (pandas: with its index), else a list of
    dicts, one a row, in the input's order."""
    if rows.kind == "pandas":
        import pandas as pd  # type: ignore[import-untyped]

        return pd.DataFrame(columns, index=rows.index)
    if rows.kind == "polars":
        import polars as pl

        return pl.DataFrame(columns, strict=False)
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())] if names else [{} for _ in range(rows.length)]
