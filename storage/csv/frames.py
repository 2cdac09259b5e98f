"""Frames in a table's shape: typed columns, key indexes, concatenation and merge by key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from storage.csv.codec import empty_frame, frame_dtype
from storage.errors import ValidationError
from storage.tables import Table


def as_frame(table: Table, rows: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows (already in frame form: dates and JSON as text) -> a frame with the table's dtypes."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = [name for name in frame.columns if name not in table.headers]
    if unknown:
        raise ValidationError(
            f"{table.name}: unknown column {unknown[0]!r}", table=table.name, field=str(unknown[0])
        )
    data: dict[str, Any] = {}
    for column in table.all_columns:
        dtype = frame_dtype(column)
        if column.name not in frame.columns:
            data[column.name] = pd.Series([None] * len(frame), dtype=dtype, index=frame.index)
        else:
            data[column.name] = _typed(frame[column.name], dtype)
    return pd.DataFrame(data, index=frame.index)


def _typed(series: pd.Series, dtype: str) -> pd.Series:
    """The column in the table's dtype; text columns hold None (not NaN) where missing.
    Columns already right are kept as they are (most are, and each conversion costs)."""
    if dtype != "object":
        return series if str(series.dtype) == dtype else series.astype(dtype)
    if series.dtype == object:
        missing = series.isna()
        return series.where(~missing, None) if missing.any() else series
    return series.astype(object).where(series.notna(), None)


def key_index(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.Index:
    """The rows' keys as one index: a plain index for one key column (hashing one column is
    much cheaper than building a MultiIndex), a MultiIndex of the columns otherwise."""
    if len(keys) == 1:
        return pd.Index(frame[keys[0]].astype(object).to_numpy(), dtype=object)
    return pd.MultiIndex.from_frame(frame[list(keys)].astype(object))


def keys_index(keys: Iterable[tuple[Any, ...]], width: int) -> pd.Index:
    """Key tuples as an index comparable with `key_index` of the same table."""
    tuples = list(keys)
    if width == 1:
        return pd.Index([key[0] for key in tuples], dtype=object)
    return pd.MultiIndex.from_tuples(tuples)


def concat_rows(table: Table, frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return new.reset_index(drop=True) if not new.empty else empty_frame(table)
    if new.empty:
        return frame
    for name in frame.columns:
        if name not in new.columns:
            new[name] = None
    return pd.concat([frame, new[frame.columns]], ignore_index=True)


def merge_rows(
    table: Table, frame: pd.DataFrame, new: pd.DataFrame, keys: tuple[str, ...]
) -> pd.DataFrame:
    """Rows of `new` replace rows of `frame` with the same key (last one wins within `new`)."""
    new_keys = key_index(new, keys)
    new = new[~new_keys.duplicated(keep="last")]
    if frame.empty:
        return concat_rows(table, frame, new)
    frame_keys, new_keys = key_index(frame, keys), key_index(new, keys)
    replaced = frame_keys.isin(new_keys)
    extras = [name for name in frame.columns if name not in new.columns]
    if extras and replaced.any():  # unknown columns are kept: carry them to the new row
        old = frame.loc[replaced, extras].set_axis(frame_keys[replaced])
        new = new.copy()
        for name in extras:
            new[name] = old[name].reindex(new_keys).to_numpy()
    return concat_rows(table, frame[~replaced], new)
