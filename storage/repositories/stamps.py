"""Row bookkeeping: unchanged rows keep their stamps, changed rows get a new updatedAt and
version + 1, new rows start at version 1; a write naming the version it read is checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from storage.csv.frames import key_index
from storage.errors import Conflict
from storage.tables import ColumnType, Table


def stamp_rows(
    table: Table, existing: pd.DataFrame, new: pd.DataFrame, now: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Bookkeeping for validated rows against the stored ones: unchanged rows keep their
    stamps, changed rows get updatedAt=now and version+1. Returns (rows, unchanged mask)."""
    if existing.empty:
        stamped = new.copy()
        stamped["createdAt"] = stamped["updatedAt"] = now
        stamped["version"] = pd.Series(1, index=new.index, dtype="Int64")
        return stamped, np.zeros(len(new), bool)
    existing_keys, new_keys = key_index(existing, table.key), key_index(new, table.key)
    hit = existing_keys.isin(new_keys)
    old = existing[hit].set_axis(existing_keys[hit]).reindex(new_keys).set_axis(new.index)
    is_new = old[table.key[0]].isna().to_numpy()
    same = ~is_new
    if same.any():
        for column in table.columns:
            equal = _equal(new[column.name], old[column.name])
            if column.type is ColumnType.JSON:
                equal |= _same_json(new[column.name], old[column.name], ~equal & same)
            same &= equal
    stamped = new.copy()
    stamped["createdAt"] = np.where(is_new, now, old["createdAt"].to_numpy(dtype=object))
    stamped["updatedAt"] = np.where(same, old["updatedAt"].to_numpy(dtype=object), now)
    bumped = old["version"].astype("Int64").fillna(0) + 1
    stamped["version"] = bumped.where(~same, old["version"].astype("Int64")).astype("Int64")
    return stamped, same


def _equal(new: pd.Series, old: pd.Series) -> np.ndarray:
    """Row by row: both missing (NaN, NA, None alike), or both present and equal. A column
    at a time, in its own dtype where both sides share one (no Python objects for numbers)."""
    new_missing, old_missing = new.isna().to_numpy(), old.isna().to_numpy()
    if new.dtype == old.dtype and new.dtype.kind in "fiub":
        kind = getattr(new.dtype, "numpy_dtype", new.dtype)  # Int64 / boolean: int64 / bool
        fill = False if kind.kind == "b" else 0
        equal = new.to_numpy(kind, na_value=fill) == old.to_numpy(kind, na_value=fill)
    else:
        equal = new.to_numpy(dtype=object, na_value=None) == old.to_numpy(
            dtype=object, na_value=None
        )
    return np.where(new_missing | old_missing, new_missing & old_missing, equal)  # type: ignore[no-any-return]


def _same_json(new: pd.Series, old: pd.Series, differ: np.ndarray) -> np.ndarray:
    """JSON texts that differ but hold equal values (405.0 and 405: SQLite keeps a bare number
    as a number), as the row path compares them; parsed only where the texts differ."""
    equal = np.zeros(len(new), bool)
    for place in np.flatnonzero(differ):
        a, b = new.iloc[place], old.iloc[place]
        equal[place] = isinstance(a, str) and isinstance(b, str) and json.loads(a) == json.loads(b)
    return equal


def stamp_frame(table: Table, existing: pd.DataFrame, new: pd.DataFrame, now: str) -> pd.DataFrame:
    """Only the new or changed rows of `new`, stamped."""
    stamped, same = stamp_rows(table, existing, new, now)
    return stamped[~same]


def rows_of(table: Table, existing: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of `existing` with the keys of `rows`."""
    if existing.empty or rows.empty:
        return existing.iloc[0:0]
    return existing[key_index(existing, table.key).isin(key_index(rows, table.key))]


def check_version(table: str, key: str, old: Mapping[str, Any] | None, expected: Any) -> None:
    """CONFLICT unless the stored row `old` is at the `version` its sender read (None: the
    sender named none, nothing to check)."""
    if expected is None:
        return
    if old is None:
        raise Conflict(
            f"{table} {key} does not exist, not at version {expected}: "
            "it was deleted since you read it, or never stored",
            table=table,
            key=key,
        )
    current = old.get("version")
    if current != expected:
        raise Conflict(
            f"{table} {key} is at version {current}, not {expected}: it changed since you read it",
            table=table,
            key=key,
        )
