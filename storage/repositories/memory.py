"""In-memory repository for fast unit tests: the same base, so the same contract."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from storage.repositories.base import Key, Repository, Unit
from storage.tables import Table
from storage.values import Row


@dataclass
class MemoryUnit(Unit):
    rows: dict[Key, Row] = field(default_factory=dict)

    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]:
        return {key: dict(self.rows[key]) for key in keys if key in self.rows}

    def put(self, rows: Sequence[Row], existing: set[Key]) -> None:
        for row in rows:
            self.rows[tuple(row[n] for n in self.table.key)] = dict(row)

    def remove(self, keys: Sequence[Key]) -> int:
        return sum(self.rows.pop(key, None) is not None for key in keys)


class MemoryRepository(Repository):
    backend_name = "memory"

    def __init__(self, table: Table, **options: Any) -> None:
        super().__init__(table, **options)
        self._rows: dict[Key, Row] = {}
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, deadline: float | None = None) -> Iterator[Unit]:
        with self._lock:
            unit = MemoryUnit(self.table, rows=dict(self._rows))
            yield unit
            self._rows = unit.rows

    def scan(
        self,
        filters: Mapping[str, Any],
        after: Key | None,
        limit: int,
        deadline: float | None = None,
    ) -> list[Row]:
        with self._lock:
            keys = sorted(
                k
                for k, row in self._rows.items()
                if all(row.get(n) == v for n, v in filters.items()) and (after is None or k > after)
            )
            return [dict(self._rows[k]) for k in keys[:limit]]

    def health(self) -> dict[str, Any]:
        return {"backend": "memory", "ok": True, "rows": len(self._rows)}
