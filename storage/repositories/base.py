"""The repository contract. All versioning and error logic lives here; backends supply a unit of
work with four primitives (fetch, put, remove, scan) and their own lifecycle."""

from __future__ import annotations

import base64
import builtins
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from storage.errors import AlreadyExists, NotFound, ValidationError
from storage.repositories.stamps import check_version
from storage.tables import BOOKKEEPING, Table
from storage.values import Row, key_of, normalize_key, to_json_value, validate_row

Key = tuple[Any, ...]
MAX_PAGE = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None = None


ANY_OF = (list, tuple, set, frozenset)  # a filter value of these: the row matches any of them
EVERY_DATE = "0000-00-00"  # a replace_scope date before any stored one: all the athlete's rows


@dataclass
class Unit(ABC):
    """One atomic read-modify-write against a backend, open for the length of a `with` block."""

    table: Table
    written: list[Row] = field(default_factory=list)

    @abstractmethod
    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]: ...

    @abstractmethod
    def put(self, rows: Sequence[Row], existing: set[Key]) -> None: ...

    @abstractmethod
    def remove(self, keys: Sequence[Key]) -> int: ...


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps([to_json_value(v) for v in key]).encode()).decode()


def decode_cursor(table: Table, cursor: str) -> Key:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return normalize_key(table, tuple(parts))
    except (ValueError, TypeError):
        raise ValidationError(
            f"{table.name}: cursor {cursor[:40]!r} is not one this API issued",
            table=table.name,
            field="cursor",
        ) from None


class Repository(ABC):
    """get / list / add / update / upsert / upsert_many / delete over one table."""

    backend_name = "abstract"
    filters_where_stored = False  # read_frame's filters cut what is read (SQL), not only kept

    def __init__(self, table: Table, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.table = table
        self.clock = clock

    # -- primitives a backend supplies ---------------------------------------------------------
    @abstractmethod
    def transaction(self, deadline: float | None = None) -> AbstractContextManager[Unit]: ...

    @abstractmethod
    def scan(
        self,
        filters: Mapping[str, Any],
        after: Key | None,
        limit: int,
        deadline: float | None = None,
    ) -> list[Row]:
        """Rows matching equality filters with key > after, in key order."""

    def initialize(self) -> None:  # noqa: B027 - optional hook
        """Create what the backend needs (folders, tables); safe to call twice."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Release connections and handles."""

    @abstractmethod
    def health(self) -> dict[str, Any]: ...

    # -- the contract --------------------------------------------------------------------------
    def get(self, key: Any, *, deadline: float | None = None) -> Row | None:
        wanted = normalize_key(self.table, key)
        with self.transaction(deadline) as unit:
            return unit.fetch([wanted]).get(wanted)

    def list(
        self,
        filters: Mapping[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        deadline: float | None = None,
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError(
                f"limit must be 1..{MAX_PAGE}", table=self.table.name, field="limit"
            )
        clean = validate_row(self.table, dict(filters or {}), partial=True)
        after = decode_cursor(self.table, cursor) if cursor else None
        rows = self.scan(clean, after, limit + 1, deadline)
        if len(rows) > limit:
            return Page(rows[:limit], encode_cursor(key_of(self.table, rows[limit - 1])))
        return Page(rows)

    def iterate(
        self, filters: Mapping[str, Any] | None = None, page_size: int = 1000
    ) -> Iterator[Row]:
        cursor: str | None = None
        while True:
            page = self.list(filters, page_size, cursor)
            yield from page.rows
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def add(self, row: Mapping[str, Any], *, deadline: float | None = None) -> Row:
        clean = validate_row(self.table, row)
        key = key_of(self.table, clean)
        with self.transaction(deadline) as unit:
            if unit.fetch([key]):
                raise AlreadyExists(
                    f"{self.table.name} {_show(key)} already exists",
                    table=self.table.name,
                    key=_show(key),
                )
            stored = self._stamp(clean, None)
            unit.put([stored], set())
            return stored

    def update(self, key: Any, partial: Mapping[str, Any], *, deadline: float | None = None) -> Row:
        wanted = normalize_key(self.table, key)
        changes = validate_row(self.table, partial, partial=True)
        if any(
            changes.get(name, part) != part
            for name, part in zip(self.table.key, wanted, strict=True)
        ):
            raise ValidationError(
                f"{self.table.name}: an update cannot change the key",
                table=self.table.name,
                field=self.table.key[0],
            )
        with self.transaction(deadline) as unit:
            old = unit.fetch([wanted]).get(wanted)
            if old is None:
                raise NotFound(
                    f"{self.table.name} {_show(wanted)} does not exist",
                    table=self.table.name,
                    key=_show(wanted),
                )
            self._check_version(wanted, old, partial.get("version"))
            merged = {name: old[name] for name in self._data_columns()} | changes
            stored = self._stamp(merged, old)
            if stored is not old:
                unit.put([stored], {wanted})
            return stored

    def upsert(self, row: Mapping[str, Any], *, deadline: float | None = None) -> Row:
        return self._upsert([row], deadline)[0][0]

    def upsert_many(
        self, rows: Iterable[Mapping[str, Any]], *, deadline: float | None = None
    ) -> int:
        return len(self._upsert(list(rows), deadline)[0])

    def upsert_changes(
        self, rows: Iterable[Mapping[str, Any]], *, deadline: float | None = None
    ) -> builtins.list[Row]:
        """Upsert and return only the rows whose data changed (new or different)."""
        return self._upsert(list(rows), deadline)[1]

    def upsert_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Bulk path: validate and upsert a frame of rows; returns the changed rows."""
        return self.upsert_frame_changes(frame)[0]

    def upsert_frame_changes(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Bulk upsert returning (changed rows, the stored rows they replaced): a job needs
        both when a change moves a row (an activity to another day). Backends with a faster
        whole-table path override this."""
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        changed, replaced = self.upsert_checked(records)
        return pd.DataFrame(changed), pd.DataFrame(replaced)

    def upsert_checked(
        self, rows: Iterable[Mapping[str, Any]], *, deadline: float | None = None
    ) -> tuple[builtins.list[Row], builtins.list[Row]]:
        """Row by row, each `version` a row names checked in the write's own transaction
        (CONFLICT, nothing written, when stale): (the changed rows, the rows they replaced)."""
        _, changed, replaced = self._upsert(list(rows), deadline)
        return changed, replaced

    def read_frame(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        since: str | None = None,
        changed_after: str | None = None,
        before: str | None = None,
    ) -> pd.DataFrame:
        """The table in frame form (dates and JSON as text): the bulk path for metrics.
        `since` / `before`: rows whose partition column is on/after / before it;
        `changed_after`: rows updated after that stamp. CSV overrides this to read only the
        months that can match."""
        from storage.limits import check_frame, refuse_stored
        from storage.repositories.frames import filter_frame, rows_to_frame

        scalar = {n: v for n, v in (filters or {}).items() if not isinstance(v, ANY_OF)}
        frame = rows_to_frame(self.table, builtins.list(self.iterate(scalar, page_size=5000)))
        where = f"the {self.backend_name} table {self.table.name}"
        check_frame(self.table, frame, refuse_stored(self.table, frame, where))
        return filter_frame(self.table, frame, filters, since, changed_after, before)

    def earliest_by_athlete(
        self, column: str, *, changed_after: str | None = None
    ) -> dict[str, str]:
        """Each athlete's earliest day (YYYY-MM-DD, UTC) in `column` among its rows changed
        after `changed_after` (None: all rows): what a rollup needs, not the rows."""
        frame = self.read_frame(changed_after=changed_after)
        days = frame[column].dropna().astype(str).str.slice(0, 10)
        return {str(a): str(d) for a, d in days.groupby(frame["athleteId"]).min().items()}

    def replace_scope(self, frame: pd.DataFrame, scope: Mapping[str, str], date_column: str) -> int:
        """Rows of each athlete in `scope` dated on/after its date (EVERY_DATE: all its rows)
        are replaced by `frame`'s (frame form). Returns how many rows changed. CSV overrides
        this with one cycle."""
        from storage.repositories.frames import frame_to_rows

        new_rows = frame_to_rows(self.table, frame)
        new_keys = {key_of(self.table, row) for row in new_rows}
        stale = [
            key_of(self.table, row)
            for athlete, since in scope.items()
            for row in self.iterate({"athleteId": athlete})
            if str(row[date_column]) >= since and key_of(self.table, row) not in new_keys
        ]
        with self.transaction() as unit:
            removed = unit.remove(stale)
        return removed + len(self.upsert_changes(new_rows))

    def delete(self, key: Any, *, deadline: float | None = None) -> bool:
        wanted = normalize_key(self.table, key)
        with self.transaction(deadline) as unit:
            return unit.remove([wanted]) > 0

    # -- shared logic ----------------------------------------------------------------------------
    def _upsert(
        self,
        rows: builtins.list[Mapping[str, Any]],
        deadline: float | None,
        unit: Unit | None = None,
    ) -> tuple[builtins.list[Row], builtins.list[Row], builtins.list[Row]]:
        """(every row as stored, the changed ones, the stored rows those replaced), in the
        caller's unit of work if it passes one, else in one of its own."""
        clean = [(validate_row(self.table, row), row.get("version")) for row in rows]
        keys = [key_of(self.table, row) for row, _ in clean]
        results: builtins.list[Row] = []
        opened = nullcontext(unit) if unit is not None else self.transaction(deadline)
        with opened as work:
            existing = work.fetch(list(dict.fromkeys(keys)))
            replaced = dict(existing)
            changed: dict[Key, Row] = {}
            for (row, expected), key in zip(clean, keys, strict=True):
                old = existing.get(key)
                stored = self._stamp(row, old)
                if stored is not old:  # as stored already (a job's retry): no conflict
                    self._check_version(key, old, expected)
                    existing[key] = changed[key] = stored
                results.append(stored)
            if changed:
                work.put(list(changed.values()), set(replaced) & set(changed))
        return results, list(changed.values()), [replaced[k] for k in changed if k in replaced]

    def _data_columns(self) -> builtins.list[str]:
        return [column.name for column in self.table.columns]

    def _stamp(self, data: Row, old: Row | None) -> Row:
        """Add bookkeeping; an unchanged row is returned as the same object (nothing to write)."""
        if old is not None and all(old.get(n) == data.get(n) for n in self._data_columns()):
            return old
        now = self.clock()
        return {
            **data,
            "createdAt": old["createdAt"] if old and old.get("createdAt") else now,
            "updatedAt": now,
            "version": (old.get("version") or 0) + 1 if old else 1,
        }

    def _check_version(self, key: Key, old: Row | None, expected: Any) -> None:
        check_version(self.table.name, _show(key), old, expected)


def _show(key: Key) -> str:
    return "/".join(str(part) for part in key)


def strip_bookkeeping(row: Mapping[str, Any]) -> Row:
    return {name: value for name, value in row.items() if name not in BOOKKEEPING}
