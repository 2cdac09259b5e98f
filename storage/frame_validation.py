"""Vectorised validation of a whole frame of rows (bulk ingest), with the same rules as values.py.
Errors name the row number, its key and the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from storage.codecs import codec_of
from storage.errors import ValidationError
from storage.limits import Refuse, check_column, hides_values
from storage.tables import BOOKKEEPING, Column, ColumnType, Table
from storage.values import shown


def _fail(table: Table, frame: pd.DataFrame, bad: np.ndarray, column: Column, why: str) -> None:
    position = int(np.flatnonzero(bad)[0])
    key = "/".join(str(frame[name].iloc[position]) for name in table.key if name in frame)
    value = frame[column.name].iloc[position]
    got = "a secret value, not shown" if hides_values(table, column) else shown(value)
    raise ValidationError(
        f"{table.name} row {position + 1} ({key}): {column.name} {why} (got {got})",
        table=table.name,
        field=column.name,
        key=key,
    )


def _refuse_in(table: Table, frame: pd.DataFrame) -> Refuse:
    def refuse(bad: np.ndarray, column: Column, why: str) -> None:
        if bad.any():
            _fail(table, frame, bad, column, why)

    return refuse


def _coerce(table: Table, frame: pd.DataFrame, column: Column) -> pd.Series:
    series = frame[column.name]
    clean, problems = codec_of(column.type).coerce_series(series, series.isna().to_numpy())
    for bad, why in problems:
        _check(table, frame, bad, column, why)
    return clean


def _check(table: Table, frame: pd.DataFrame, bad: np.ndarray, column: Column, why: str) -> None:
    if bad.any():
        _fail(table, frame, bad, column, why)


def frame_of_records(table: Table, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as sent (dicts) -> a frame for `validate_frame`. pandas makes a column of ints with
    gaps float64, which rounds one above 2**53: such whole-number columns are kept as the
    Python values sent."""
    frame = pd.DataFrame(list(rows))
    for column in table.columns:
        name = column.name
        if column.type is ColumnType.INT and name in frame and frame[name].dtype.kind == "f":
            values = [row.get(name) for row in rows]
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def validate_frame(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as a frame -> the table's frame form (dtypes of codec.frame_dtype), or VALIDATION."""
    unknown = [name for name in frame.columns if name not in table.headers]
    if unknown:
        raise ValidationError(
            f"{table.name}: unknown field {unknown[0]!r}", table=table.name, field=str(unknown[0])
        )
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for column in table.columns:
        if column.name not in frame.columns:
            frame[column.name] = None
        clean = _coerce(table, frame, column)
        check_column(table, column, clean, _refuse_in(table, frame))
        out[column.name] = clean
    for name in BOOKKEEPING:
        dtype = codec_of(table.column(name).type).frame_dtype
        out[name] = pd.Series([None] * len(out), dtype=dtype)
    return out
