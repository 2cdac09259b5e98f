"""Vectorised validation of a whole frame of rows (bulk ingest), with the same rules as values.py.
Errors name the row number, its key and the field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from storage.csv.cells import datetime_text, json_text
from storage.csv.codec import frame_dtype
from storage.errors import ValidationError
from storage.limits import Refuse, check_column, hides_values
from storage.tables import BOOKKEEPING, Column, ColumnType, Table
from storage.values import shown

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
TIMESTAMP_LIKE = ("string", "empty", "datetime", "datetime64")  # pandas.api.types.infer_dtype


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


def _without_numbers(series: pd.Series) -> pd.Series:
    """Numbers blanked, so that they are refused as timestamps: pandas would read one as an
    epoch count (deprecated, and in pandas 4 the rule) and 1700000000 would become 1970."""
    if pd.api.types.infer_dtype(series, skipna=True) in TIMESTAMP_LIKE:
        return series
    values = series.to_numpy(dtype=object)
    numbers = np.fromiter(
        (isinstance(v, int | float | np.number | np.bool_) for v in values), bool, len(values)
    )
    return series.astype(object).where(~numbers, None)


def _coerce(table: Table, frame: pd.DataFrame, column: Column) -> pd.Series:
    series = frame[column.name]
    missing = series.isna().to_numpy()
    kind = column.type
    if kind is ColumnType.STRING:
        if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
            is_text = ~missing  # every present value is text (checked in C)
        else:
            values = series.to_numpy(dtype=object)
            is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
        _check(table, frame, ~missing & ~is_text, column, "must be text")
        return series.astype(object).where(~missing, None)
    if kind in (ColumnType.INT, ColumnType.FLOAT):
        if series.dtype.kind in "fiu" or str(series.dtype) == "Int64" or missing.all():
            is_bool = np.zeros(len(series), bool)  # a numeric dtype holds no booleans
        else:
            is_bool = np.fromiter(
                (isinstance(v, bool | np.bool_) for v in series.to_numpy(object)), bool, len(series)
            )
        numbers = pd.to_numeric(series.where(~is_bool), errors="coerce").astype("float64")
        bad = ~missing & (numbers.isna().to_numpy() | ~np.isfinite(numbers.fillna(0).to_numpy()))
        _check(table, frame, bad, column, f"is not a valid {kind}")
        if kind is ColumnType.INT:
            _check(
                table,
                frame,
                ~missing & (numbers.fillna(0) % 1 != 0).to_numpy(),
                column,
                "must be a whole number",
            )
            if series.dtype.kind in "iu" or str(series.dtype) == "Int64":
                return series.astype("Int64")
            return numbers.round().astype("Int64")
        return numbers
    if kind is ColumnType.BOOL:
        lowered = series.map(lambda v: v if isinstance(v, bool | np.bool_) else str(v).lower())
        mapped = lowered.map({True: True, False: False, "true": True, "false": False})
        _check(table, frame, ~missing & mapped.isna().to_numpy(), column, "must be true or false")
        return mapped.astype("boolean")
    if kind is ColumnType.DATE:
        text = series.astype(str).str.slice(0, 10).where(~missing)
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        _check(
            table, frame, ~missing & parsed.isna().to_numpy(), column, "is not a date (YYYY-MM-DD)"
        )
        ok = text.str.match(_ISO_DATE).fillna(False).to_numpy(bool)
        formatted = text.where(ok, parsed.dt.strftime("%Y-%m-%d"))
        return formatted.astype(object).where(~missing, None)
    if kind is ColumnType.DATETIME:
        parsed = pd.to_datetime(
            _without_numbers(series), utc=True, format="ISO8601", errors="coerce"
        )
        _check(
            table,
            frame,
            ~missing & parsed.isna().to_numpy(),
            column,
            "is not an ISO-8601 timestamp",
        )
        return datetime_text(parsed)
    values = series.to_numpy(dtype=object)
    try:
        return pd.Series(
            [None if m else json_text(v) for v, m in zip(values, missing, strict=True)],
            index=series.index,
            dtype=object,
        )
    except (TypeError, ValueError):
        bad = np.array([not m and not _jsonable(v) for v, m in zip(values, missing, strict=True)])
        _fail(table, frame, bad, column, "is not JSON")
        raise


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _check(table: Table, frame: pd.DataFrame, bad: np.ndarray, column: Column, why: str) -> None:
    if bad.any():
        _fail(table, frame, bad, column, why)


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
        out[name] = pd.Series([None] * len(out), dtype=frame_dtype(table.column(name)))
    return out
