"""Repository over one locked CSV file: a unit of work is one exclusive read-modify-write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storage.csv.codec import read_frame
from storage.csv.storage import CsvStorage, as_frame, concat_rows, key_index, merge_rows
from storage.frame_validation import validate_frame
from storage.repositories.base import Key, Repository, Unit
from storage.repositories.frames import (
    cell_to_frame,
    datetime_to_text,
    frame_to_rows,
    rows_to_frame,
)
from storage.tables import Table
from storage.values import Row


@dataclass
class CsvUnit(Unit):
    frame: pd.DataFrame = None  # type: ignore[assignment]
    dirty: bool = False

    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]:
        if not keys or self.frame.empty:
            return {}
        wanted = pd.MultiIndex.from_tuples([self._frame_key(k) for k in keys])
        hits = self.frame[key_index(self.frame, self.table.key).isin(wanted)]
        rows = frame_to_rows(self.table, hits)
        return {tuple(row[n] for n in self.table.key): row for row in rows}

    def put(self, rows: Sequence[Row], existing: set[Key]) -> None:
        new = rows_to_frame(self.table, rows)
        self.frame = merge_rows(self.table, self.frame, new, self.table.key)
        self.dirty = True

    def remove(self, keys: Sequence[Key]) -> int:
        if not keys or self.frame.empty:
            return 0
        wanted = pd.MultiIndex.from_tuples([self._frame_key(k) for k in keys])
        hit = key_index(self.frame, self.table.key).isin(wanted)
        if hit.any():
            self.frame = self.frame[~hit]
            self.dirty = True
        return int(hit.sum())

    def _frame_key(self, key: Key) -> tuple[Any, ...]:
        return tuple(
            cell_to_frame(self.table.column(n).type, v)
            for n, v in zip(self.table.key, key, strict=True)
        )


class CsvRepository(Repository):
    backend_name = "csv"

    def __init__(self, table: Table, csv: CsvStorage, **options: Any) -> None:
        super().__init__(table, **options)
        self.csv = csv

    @contextmanager
    def transaction(self, deadline: float | None = None) -> Iterator[Unit]:
        with self.csv.locked(self.table, exclusive=True):
            unit = CsvUnit(self.table, frame=read_frame(self.csv.path(self.table), self.table))
            yield unit
            if unit.dirty:
                self.csv._replace(self.table, unit.frame)

    def scan(
        self,
        filters: Mapping[str, Any],
        after: Key | None,
        limit: int,
        deadline: float | None = None,
    ) -> list[Row]:
        frame = self.read_frame(filters)
        if frame.empty:
            return []
        frame = frame.sort_values(list(self.table.key), kind="stable")
        if after is not None:
            keys = list(key_index(frame, self.table.key))
            start = [i for i, k in enumerate(keys) if k > CsvUnit(self.table)._frame_key(after)]
            frame = frame.iloc[start[0] :] if start else frame.iloc[0:0]
        return frame_to_rows(self.table, frame.head(limit))

    def upsert_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Validate and upsert a whole frame in one locked cycle, O(n + k); returns the rows
        that changed (frame form: dates and JSON as text)."""
        new = validate_frame(self.table, frame)
        new = new[~key_index(new, self.table.key).duplicated(keep="last")]
        now = datetime_to_text(self.clock())
        changed = new.iloc[0:0]

        def change(existing: pd.DataFrame) -> pd.DataFrame:
            nonlocal changed
            changed = stamp_frame(self.table, existing, new, now)
            if changed.empty:
                return existing
            return merge_rows(self.table, existing, changed, self.table.key)

        self.csv.modify(self.table, change)
        return changed

    def replace_scope(self, frame: pd.DataFrame, scope: Mapping[str, str], date_column: str) -> int:
        new = as_frame(self.table, frame)
        now = datetime_to_text(self.clock())
        changed = 0

        def change(existing: pd.DataFrame) -> pd.DataFrame:
            nonlocal changed
            stamped, same = stamp_rows(self.table, existing, new, now)
            since = existing["athleteId"].map(scope)
            doomed = since.notna() & (existing[date_column].astype(str) >= since.fillna(""))
            changed = int((~same).sum()) + int(
                (
                    doomed
                    & ~key_index(existing, self.table.key).isin(key_index(new, self.table.key))
                ).sum()
            )
            if not changed:
                return existing
            keep = existing[
                ~doomed & ~key_index(existing, self.table.key).isin(key_index(new, self.table.key))
            ]
            return concat_rows(self.table, keep, stamped)

        self.csv.modify(self.table, change)
        return changed

    def read_frame(self, filters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The table as a typed frame (bulk path for metrics), filtered by equality."""
        frame = self.csv.read(self.table)
        for name, value in (filters or {}).items():
            frame = frame[frame[name] == cell_to_frame(self.table.column(name).type, value)]
        return frame

    def initialize(self) -> None:
        self.csv.folder.mkdir(parents=True, exist_ok=True)
        self.csv.migrate_headers(self.table)

    def health(self) -> dict[str, Any]:
        self.csv.read(self.table)
        return {"backend": "csv", "ok": True, "path": str(self.csv.path(self.table))}


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
    for column in table.columns:
        a = new[column.name].astype(object).where(new[column.name].notna(), None).to_numpy()
        b = old[column.name].astype(object).where(old[column.name].notna(), None).to_numpy()
        same &= a == b
    stamped = new.copy()
    stamped["createdAt"] = np.where(is_new, now, old["createdAt"].to_numpy(dtype=object))
    stamped["updatedAt"] = np.where(same, old["updatedAt"].to_numpy(dtype=object), now)
    bumped = old["version"].astype("Int64").fillna(0) + 1
    stamped["version"] = bumped.where(~same, old["version"].astype("Int64")).astype("Int64")
    return stamped, same


def stamp_frame(table: Table, existing: pd.DataFrame, new: pd.DataFrame, now: str) -> pd.DataFrame:
    """Only the new or changed rows of `new`, stamped."""
    stamped, same = stamp_rows(table, existing, new, now)
    return stamped[~same]
