"""The limits every stored value keeps, whichever way it comes: rows and frames written, CSV files
and SQL tables read. A hand-edited file or a row changed by hand in SQL that breaks one (a
`durationSec` of inf, a sport no one knows, a heart rate of 999) is refused as it is read,
naming table, column and row, instead of flowing into the metrics.

Checks run on a column in frame form (text for strings, dates and JSON; float64; Int64;
boolean). `refuse(bad, column, why)` raises for the first row `bad` marks; each caller names
that row its own way (VALIDATION on writes, CORRUPT on reads)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from storage.errors import CorruptFile
from storage.tables import Column, ColumnType, Table
from storage.textscan import any_empty, any_starts_with, joined
from storage.zones import is_time_zone

MAX_STRING = 10_000
YEARS = (1900, 2999)  # the years a date may name: outside them it is a typo, and may overflow
OUTSIDE_YEARS = f"must fall in the years {YEARS[0]}-{YEARS[1]}"
REQUIRED = "is required"
NUL_TEXT = "holds a NUL character, which no database stores"
BROKEN_TEXT = "holds text that is not valid Unicode (a lone UTF-16 surrogate)"
_SURROGATE = re.compile("[\ud800-\udfff]")
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() takes off, in ASCII

Refuse = Callable[[np.ndarray, Column, str], None]


def hides_values(table: Table, column: Column) -> bool:
    """A secret table's values (all but its key) are never shown in an error."""
    return table.secret and column.name not in table.key


def check_column(table: Table, column: Column, values: pd.Series, refuse: Refuse) -> None:
    present = values.notna().to_numpy()
    if column.required:
        refuse(~present, column, REQUIRED)
    kind = column.type
    if kind is ColumnType.STRING:
        _check_text(column, values, present, refuse)
    elif kind is ColumnType.FLOAT:
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        refuse(present & np.isinf(numbers), column, "is not a finite number")
    elif kind is ColumnType.JSON:
        _check_json(column, values, present, refuse)
    if column.choices is not None:
        refuse(present & ~values.isin(column.choices).to_numpy(), column, _one_of(column))
    if column.minimum is not None:
        below = (values.fillna(column.minimum) < column.minimum).to_numpy(bool)
        refuse(present & below, column, f"must be at least {column.minimum:g}")
    if column.maximum is not None:
        above = (values.fillna(column.maximum) > column.maximum).to_numpy(bool)
        refuse(present & above, column, f"must be at most {column.maximum:g}")
    if kind in (ColumnType.DATE, ColumnType.DATETIME):  # text: the year leads
        years = pd.to_numeric(values.astype(object).str.slice(0, 4), errors="coerce")
        years_ok = ((years >= YEARS[0]) & (years <= YEARS[1])).to_numpy(bool)
        refuse(present & ~years_ok, column, OUTSIDE_YEARS)
    if column.timezone:
        for name in values.dropna().unique():
            if not is_time_zone(str(name)):
                refuse((values == name).to_numpy(bool), column, "is not an IANA timezone")


def check_frame(table: Table, frame: pd.DataFrame, refuse: Refuse) -> None:
    """Every data column of `table` that `frame` holds."""
    for column in table.columns:
        if column.name in frame.columns:
            check_column(table, column, frame[column.name], refuse)


def refuse_stored(table: Table, frame: pd.DataFrame, where: str) -> Refuse:
    """For rows read back from a database: CORRUPT naming the table, column and key."""

    def refuse(bad: np.ndarray, column: Column, why: str) -> None:
        if not bad.any():
            return
        row = int(np.flatnonzero(bad)[0])
        key = "/".join(str(frame[name].iloc[row]) for name in table.key if name in frame)
        value = frame[column.name].iloc[row]
        held = "a secret value" if hides_values(table, column) else repr(value)[:80]
        raise CorruptFile(
            f"{where}: {table.name}.{column.name} of row {key} {why} (it holds {held})",
            table=table.name,
            field=column.name,
            key=key,
        )

    return refuse


def _one_of(column: Column) -> str:
    return f"must be one of {', '.join(column.choices or ())}"


def _check_text(column: Column, values: pd.Series, present: np.ndarray, refuse: Refuse) -> None:
    """Length, NUL, broken Unicode and blanks: one C-level pass over the joined text decides
    whether any value needs a closer look (most columns need none)."""
    text = values.to_numpy(dtype=object)[present]
    if not len(text) or not all(isinstance(value, str) for value in text[:1]):
        return
    joined = "".join(text)
    if len(joined) > MAX_STRING and max(map(len, text)) > MAX_STRING:
        too_long = f"is longer than {MAX_STRING:,} characters"
        refuse(_marked(values, lambda v: len(v) > MAX_STRING), column, too_long)
    if "\x00" in joined:
        refuse(_marked(values, lambda v: "\x00" in v), column, NUL_TEXT)
    if not joined.isascii() and _SURROGATE.search(joined):
        refuse(_marked(values, lambda v: _SURROGATE.search(v) is not None), column, BROKEN_TEXT)
    if column.required and _maybe_blank(text):
        refuse(_marked(values, lambda v: not v.strip()), column, "must not be empty")


def _maybe_blank(text: np.ndarray) -> bool:
    """Whether a value may be empty or all whitespace (exact when the text is ASCII)."""
    together = joined(text)
    return (
        any_empty(together, len(text))
        or any_starts_with(together, WHITESPACE)
        or not together.isascii()
    )


def _marked(values: pd.Series, test: Callable[[str], bool]) -> np.ndarray:
    return np.fromiter(
        (isinstance(v, str) and test(v) for v in values.to_numpy(dtype=object)), bool, len(values)
    )


def _check_json(column: Column, values: pd.Series, present: np.ndarray, refuse: Refuse) -> None:
    """JSON text with NaN or Infinity in it: Python reads it, strict readers (and PostgreSQL's
    json type) do not."""
    text = values.to_numpy(dtype=object)[present]
    if not any(isinstance(v, str) and ("NaN" in v or "Infinity" in v) for v in text):
        return
    why = "holds NaN or Infinity, which JSON does not allow"
    refuse(_marked(values, _not_strict_json), column, why)


def _not_strict_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return True
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)
