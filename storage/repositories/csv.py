"""Repository over one locked CSV file: a unit of work is one exclusive read-modify-write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from storage.csv.codec import read_frame
from storage.csv.storage import CsvStorage, key_index, merge_rows
from storage.repositories.base import Key, Repository, Unit
from storage.repositories.frames import cell_to_frame, frame_to_rows, rows_to_frame
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
