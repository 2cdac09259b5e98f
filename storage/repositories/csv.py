"""Repository over one locked CSV file: a unit of work is one exclusive read-modify-write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd

from storage.csv.frames import as_frame, concat_rows, key_index, merge_rows
from storage.csv.partitions import (
    UNDATED,
    is_partitioned,
    month_part,
    part_ids,
)
from storage.csv.storage import CsvStorage
from storage.frame_validation import validate_frame
from storage.repositories.base import Key, Repository, Unit
from storage.repositories.csv_unit import CsvUnit
from storage.repositories.frames import (
    cell_to_frame,
    datetime_to_text,
    filter_frame,
    frame_to_rows,
    modified_after,
)
from storage.repositories.stamps import rows_of, stamp_frame, stamp_rows
from storage.tables import Table
from storage.values import Row


class CsvRepository(Repository):
    backend_name = "csv"

    def __init__(self, table: Table, csv: CsvStorage, **options: Any) -> None:
        super().__init__(table, **options)
        self.csv = csv

    @contextmanager
    def transaction(self, deadline: float | None = None) -> Iterator[Unit]:
        with self.csv.locked(self.table, exclusive=True):
            unit = CsvUnit(self.table, csv=self.csv)
            yield unit
            unit.commit()

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
            last = tuple(
                cell_to_frame(self.table.column(n).type, v)
                for n, v in zip(self.table.key, after, strict=True)
            )
            start = [i for i, k in enumerate(keys) if _as_tuple(k) > last]
            frame = frame.iloc[start[0] :] if start else frame.iloc[0:0]
        return frame_to_rows(self.table, frame.head(limit))

    def upsert_frame_changes(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Validate and upsert a whole frame in one locked cycle, O(n + k); returns the rows
        that changed and the stored rows they replaced (frame form: dates and JSON as text)."""
        new = validate_frame(self.table, frame)
        new = new[~key_index(new, self.table.key).duplicated(keep="last")]
        now = datetime_to_text(self.clock())
        changed = replaced = new.iloc[0:0]
        dirty: set[str] = set()
        new_parts = pd.Series(part_ids(self.table, new), index=new.index, dtype=object)

        def change(existing: pd.DataFrame) -> pd.DataFrame:
            nonlocal changed, replaced, dirty
            changed = stamp_frame(self.table, existing, new, now)
            replaced = rows_of(self.table, existing, changed)
            dirty = set(new_parts[changed.index]) | set(part_ids(self.table, replaced))
            if changed.empty:
                return existing
            return merge_rows(self.table, existing, changed, self.table.key)

        touched = set(new_parts) | self.csv.locate(self.table, new)
        self.csv.modify(self.table, change, touched, dirty=lambda: dirty)
        return changed, replaced

    def replace_scope(self, frame: pd.DataFrame, scope: Mapping[str, str], date_column: str) -> int:
        new = as_frame(self.table, frame)
        now = datetime_to_text(self.clock())
        changed = 0
        dirty: set[str] = set()

        def change(existing: pd.DataFrame) -> pd.DataFrame:
            nonlocal changed, dirty
            stamped, same = stamp_rows(self.table, existing, new, now)
            since = existing["athleteId"].map(scope)
            doomed = since.notna() & (existing[date_column].astype(str) >= since.fillna(""))
            kept = ~key_index(existing, self.table.key).isin(key_index(new, self.table.key))
            removed = existing[doomed & kept]
            changed = int((~same).sum()) + len(removed)
            dirty = self._parts_holding(existing, stamped[~same]) | set(
                part_ids(self.table, removed)
            )
            if not changed:
                return existing
            return concat_rows(self.table, existing[~doomed & kept], stamped)

        parts = self._scope_parts(new, scope, date_column)
        self.csv.modify(self.table, change, parts, dirty=lambda: dirty)
        return changed

    def _parts_holding(self, existing: pd.DataFrame, changed: pd.DataFrame) -> set[str]:
        """The parts a write of `changed` rows alters: theirs and those of their old rows."""
        if changed.empty:
            return set()
        old = rows_of(self.table, existing, changed)
        return set(part_ids(self.table, changed)) | set(part_ids(self.table, old))

    def _scope_parts(
        self, new: pd.DataFrame, scope: Mapping[str, str], date_column: str
    ) -> set[str] | None:
        """The months a scoped replace may touch: from the earliest scope date on, plus the
        months of the new rows and of any key they move; None (every part) otherwise."""
        if not is_partitioned(self.table) or date_column != self.table.partition or not scope:
            return None
        earliest = month_part(min(scope.values()))
        if earliest == UNDATED:
            return None
        later = {part for part in self.csv.parts(self.table) if part >= earliest}
        return later | set(part_ids(self.table, new)) | self.csv.locate(self.table, new)

    def read_frame(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        since: str | None = None,
        changed_after: str | None = None,
        before: str | None = None,
    ) -> pd.DataFrame:
        """The table as a typed frame (bulk path for metrics), filtered by equality; `since` /
        `before` keep rows whose partition column is on/after / before it and read only
        those months; `changed_after` keeps rows updated after that stamp and skips files
        older than it."""
        parts = self.csv.parts(self.table)
        if is_partitioned(self.table) and (since is not None or before is not None):
            low, high = month_part(since or "0000-01"), month_part(before or "9999-12")
            parts = [p for p in parts if p != UNDATED and (since is None or p >= low)]
            parts = [p for p in parts if before is None or p <= high]
        if changed_after is not None:
            parts = [
                p for p in parts if modified_after(self.csv.part_path(self.table, p), changed_after)
            ]
        frame = self.csv.read(self.table, parts)
        return filter_frame(self.table, frame, filters, since, changed_after, before)

    def initialize(self) -> None:
        self.csv.folder.mkdir(parents=True, exist_ok=True)
        self.csv.migrate_headers(self.table)

    def health(self) -> dict[str, Any]:
        self.csv.read(self.table)
        return {"backend": "csv", "ok": True, "path": str(self.csv.path(self.table))}


def _as_tuple(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)
