"""The CSV unit of work: the months (parts) a write needs, loaded under the table's lock,
changed in memory, and written back (new rows of a month appended) when the unit commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from storage.csv.frames import key_index, merge_rows
from storage.csv.partitions import (
    WHOLE,
    is_partitioned,
    key_decides_part,
    month_part,
    split_parts,
)
from storage.csv.storage import CsvStorage
from storage.repositories.base import Key, Unit
from storage.repositories.frames import cell_from_frame, cell_to_frame, frame_to_rows, rows_to_frame
from storage.values import Row


@dataclass
class CsvUnit(Unit):
    """Loads only the parts (months) its keys live in; writes back only the parts it changed."""

    csv: CsvStorage = None  # type: ignore[assignment]
    loaded: dict[str, pd.DataFrame] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    appended: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]:
        rows: list[Row] = []
        for _, frame, hit in self._matches(keys):
            rows.extend(frame_to_rows(self.table, frame[hit]))
        return {tuple(row[n] for n in self.table.key): row for row in rows}

    def put(self, rows: Sequence[Row], existing: set[Key]) -> None:
        if self._append(rows, existing):
            return
        new = rows_to_frame(self.table, rows)
        new_keys = key_index(new, self.table.key)
        targets = split_parts(self.table, new)
        for part in self._load(set(targets) | self.csv.locate(self.table, new)):
            frame = self.loaded[part]
            if part in targets:
                frame = merge_rows(self.table, frame, targets[part], self.table.key)
            elif not frame.empty:
                frame = frame[~key_index(frame, self.table.key).isin(new_keys)]
            self.loaded[part] = frame
            self.dirty.add(part)

    def remove(self, keys: Sequence[Key]) -> int:
        removed = 0
        for part, frame, hit in self._matches(keys):
            if hit.any():
                self.loaded[part] = frame[~hit]
                self.dirty.add(part)
                removed += int(hit.sum())
        return removed

    def commit(self) -> None:
        for part, records in sorted(self.appended.items()):
            if not self.csv.append_records(self.table, part, records):
                frame = self.csv.read_parts(self.table, [part])
                new = rows_to_frame(self.table, [self._row(r) for r in records])
                self.loaded[part] = merge_rows(self.table, frame, new, self.table.key)
                self.dirty.add(part)
        for part in sorted(self.dirty):
            self.csv.write_parts(self.table, self.loaded[part], [part])

    def _append(self, rows: Sequence[Row], existing: set[Key]) -> bool:
        """New keys of a month-partitioned table are appended to their month, not merged:
        `fetch` located every key in no month, so no row is replaced."""
        if existing or not is_partitioned(self.table) or key_decides_part(self.table):
            return False
        records = [
            {c.name: cell_to_frame(c.type, row.get(c.name)) for c in self.table.all_columns}
            for row in rows
        ]
        column = str(self.table.partition)
        parts = [month_part(str(record.get(column) or "")) for record in records]
        if set(parts) & (set(self.loaded) | set(self.appended)):
            return False
        for part, record in zip(parts, records, strict=True):
            self.appended.setdefault(part, []).append(record)
        return True

    def _row(self, record: dict[str, Any]) -> Row:
        return {c.name: cell_from_frame(c.type, record.get(c.name)) for c in self.table.all_columns}

    def _matches(self, keys: Sequence[Key]) -> Iterator[tuple[str, pd.DataFrame, np.ndarray]]:
        """(part, its loaded rows, which of them have one of `keys`) for each non-empty part
        that may hold them; a key found in no key list (a new row) builds no frame at all."""
        parts = self._parts_for_keys(keys) if keys else set()
        if not parts:
            return
        wanted = key_index(self._key_frame(keys), self.table.key)
        for part in self._load(parts):
            frame = self.loaded[part]
            if not frame.empty:
                yield part, frame, key_index(frame, self.table.key).isin(wanted)

    def _parts_for_keys(self, keys: Sequence[Key]) -> set[str]:
        """The parts to read for these keys: the whole file, the keys' own months, or the
        months whose key lists hold them."""
        if not is_partitioned(self.table):
            return {WHOLE}
        if key_decides_part(self.table):
            return set(split_parts(self.table, self._key_frame(keys)))
        if len(self.table.key) == 1:  # plain values: no frame for the common single key
            kind = self.table.column(self.table.key[0]).type
            return self.csv.locate_keys(self.table, [cell_to_frame(kind, k[0]) for k in keys])
        return self.csv.locate(self.table, self._key_frame(keys))

    def _load(self, parts: set[str]) -> list[str]:
        for part in parts - set(self.loaded):
            self.loaded[part] = self.csv.read_parts(self.table, [part])
        return sorted(parts)

    def _key_frame(self, keys: Sequence[Key]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    n: cell_to_frame(self.table.column(n).type, v)
                    for n, v in zip(self.table.key, key, strict=True)
                }
                for key in keys
            ],
            columns=list(self.table.key),
        )
