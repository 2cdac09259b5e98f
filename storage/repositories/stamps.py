"""Row bookkeeping for bulk writes: unchanged rows keep their stamps, changed rows get a new
updatedAt and version + 1, new rows start at version 1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from storage.csv.frames import key_index
from storage.tables import Table


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
    if same.any():  # compare every data column at once: one conversion per frame
        names = [column.name for column in table.columns]
        same &= (_cells(new[names]) == _cells(old[names])).all(axis=1)
    stamped = new.copy()
    stamped["createdAt"] = np.where(is_new, now, old["createdAt"].to_numpy(dtype=object))
    stamped["updatedAt"] = np.where(same, old["updatedAt"].to_numpy(dtype=object), now)
    bumped = old["version"].astype("Int64").fillna(0) + 1
    stamped["version"] = bumped.where(~same, old["version"].astype("Int64")).astype("Int64")
    return stamped, same


def _cells(frame: pd.DataFrame) -> np.ndarray:
    """Values as Python objects with None for every kind of missing (NaN, NA, None)."""
    values = frame.astype(object)
    return values.where(values.notna(), None).to_numpy()


def stamp_frame(table: Table, existing: pd.DataFrame, new: pd.DataFrame, now: str) -> pd.DataFrame:
    """Only the new or changed rows of `new`, stamped."""
    stamped, same = stamp_rows(table, existing, new, now)
    return stamped[~same]
