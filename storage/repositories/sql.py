"""Repository over one SQL table; writers of a table are serialised (see Database.transaction)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from storage.codecs import codec_of
from storage.csv.frames import as_frame, key_index
from storage.frame_validation import validate_frame
from storage.repositories.base import ANY_OF, EVERY_DATE, Key, Repository, Unit
from storage.repositories.frames import cell_from_frame, datetime_to_text
from storage.repositories.stamps import rows_of, stamp_frame, stamp_rows
from storage.sql import bulk_read, bulk_write
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.tables import ColumnType, Table
from storage.values import Row, parse_datetime

CHUNK = 500
MAX_IN = 900  # values of one IN filter put in a query (SQLite allows 32,766 in all)


@dataclass
class SqlUnit(Unit):
    connection: sa.Connection = None  # type: ignore[assignment]
    sql: sa.Table = None  # type: ignore[assignment]
    naive_datetimes: bool = False

    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]:
        found: dict[Key, Row] = {}
        for start in range(0, len(keys), CHUNK):
            match = self.matching(keys[start : start + CHUNK])
            for record in self.connection.execute(sa.select(self.sql).where(match)).mappings():
                row = from_db(self.table, dict(record))
                found[tuple(row[n] for n in self.table.key)] = row
        return found

    def put(self, rows: Sequence[Row], existing: set[Key]) -> None:
        inserts = [self._to_db(r) for r in rows if self._key(r) not in existing]
        updates = [self._to_db(r) for r in rows if self._key(r) in existing]
        if inserts:
            self.connection.execute(sa.insert(self.sql), inserts)
        if updates:
            where = sa.and_(*(self.sql.c[n] == sa.bindparam(f"k_{n}") for n in self.table.key))
            values: dict[str, Any] = {n: sa.bindparam(f"v_{n}") for n in self.table.headers}
            self.connection.execute(
                sa.update(self.sql).where(where).values(values),
                [
                    {
                        **{f"k_{n}": r[n] for n in self.table.key},
                        **{f"v_{n}": r.get(n) for n in self.table.headers},
                    }
                    for r in updates
                ],
            )
        self.written.extend(rows)

    def remove(self, keys: Sequence[Key]) -> int:
        removed = 0
        for start in range(0, len(keys), CHUNK):
            match = self.matching(keys[start : start + CHUNK])
            removed += self.connection.execute(sa.delete(self.sql).where(match)).rowcount or 0
        return removed

    def matching(self, keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        columns = [self.sql.c[name] for name in self.table.key]
        if len(columns) == 1:
            return columns[0].in_([k[0] for k in keys])
        return sa.tuple_(*columns).in_(list(keys))

    def _key(self, row: Row) -> Key:
        return tuple(row[n] for n in self.table.key)

    def _to_db(self, row: Row) -> Row:
        out = {name: row.get(name) for name in self.table.headers}
        if self.naive_datetimes:
            for name, value in out.items():
                if isinstance(value, datetime):
                    out[name] = value.astimezone(UTC).replace(tzinfo=None)
        return out


def from_db(table: Table, record: Mapping[str, Any]) -> Row:
    row: Row = {}
    for column in table.all_columns:
        value = record.get(column.name)
        row[column.name] = None if value is None else codec_of(column.type).from_db(value)
    return row


class SqlRepository(Repository):
    backend_name = "sql"
    filters_where_stored = True

    def __init__(self, table: Table, database: Database, **options: Any) -> None:
        super().__init__(table, **options)
        self.database = database
        self.sql = sql_table(table.name)

    @contextmanager
    def transaction(self, deadline: float | None = None) -> Iterator[Unit]:
        with self.database.transaction(
            deadline, write=True, lock_key=f"trainlog:{self.table.name}", table=self.table.name
        ) as connection:
            yield SqlUnit(
                self.table,
                connection=connection,
                sql=self.sql,
                naive_datetimes=self.database.dialect == "sqlite",
            )

    def read_frame(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        since: str | None = None,
        changed_after: str | None = None,
        before: str | None = None,
    ) -> pd.DataFrame:
        """The bulk path with its filters in the query, on indexed columns where the table has
        them: only the rows that can match leave the database (the bounds a day wide, the
        exact cut made on the frame as for CSV)."""
        from storage.limits import check_frame, refuse_stored
        from storage.repositories.frames import filter_frame

        where = self._pushed(filters or {}, since, changed_after, before)
        with self.database.transaction(table=self.table.name) as connection:
            frame = bulk_read.read_rows(connection, self.table, self.sql, [where])
        check_frame(
            self.table, frame, refuse_stored(self.table, frame, f"the SQL table {self.sql}")
        )
        return filter_frame(self.table, frame, filters, since, changed_after, before)

    def earliest_by_athlete(
        self, column: str, *, changed_after: str | None = None
    ) -> dict[str, str]:
        """One GROUP BY in the database. With `changed_after` it may count rows changed up to
        a second before the stamp (the pushed bound's slack): an athlete recomputed once more,
        never one left out."""
        where = self._pushed({}, None, changed_after, None)
        with self.database.transaction(table=self.table.name) as connection:
            found = bulk_read.earliest_by(connection, self.sql, "athleteId", column, where)
        return {str(athlete): _utc_day(value) for athlete, value in found if value is not None}

    def _pushed(
        self,
        filters: Mapping[str, Any],
        since: str | None,
        changed_after: str | None,
        before: str | None,
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        for name, value in filters.items():
            column = self.sql.c[name]
            if not isinstance(value, ANY_OF):
                conditions.append(column == value)
            elif len(value) <= MAX_IN:
                conditions.append(column.in_(list(value)))
        day = timedelta(days=1)
        if self.table.partition is not None:
            column = self.sql.c[self.table.partition]
            kind = self.table.column(self.table.partition).type
            if since is not None:
                conditions.append(column >= self._bound(kind, since, -day))
            if before is not None:
                conditions.append(column < self._bound(kind, before, day))
        if changed_after is not None:
            stamp = parse_datetime(changed_after) - timedelta(seconds=1)
            conditions.append(self.sql.c.updatedAt >= self._naive(stamp))
        return conditions

    def _bound(self, kind: ColumnType, text: str, slack: timedelta) -> date | datetime:
        day = date.fromisoformat(text[:10]) + slack
        if kind is ColumnType.DATE:
            return day
        return self._naive(datetime(day.year, day.month, day.day, tzinfo=UTC))

    def _naive(self, moment: datetime) -> datetime:
        """SQLite keeps timestamps as naive UTC text; PostgreSQL compares aware ones."""
        if self.database.dialect == "sqlite":
            return moment.astimezone(UTC).replace(tzinfo=None)
        return moment

    def upsert_frame_changes(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Validate a whole frame, read the stored rows of its keys, stamp and write only the
        new or changed ones, in one transaction; (changed rows, the stored rows they replaced)."""
        new = validate_frame(self.table, frame)
        new = new[~key_index(new, self.table.key).duplicated(keep="last")]
        now = datetime_to_text(self.clock())
        with self.transaction() as unit:
            assert isinstance(unit, SqlUnit)
            existing = self._stored(unit, new)
            changed = stamp_frame(self.table, existing, new, now)
            stored = key_index(existing, self.table.key)
            bulk_write.write_rows(unit.connection, self.table, self.sql, changed, stored)
        return changed, rows_of(self.table, existing, changed)

    def replace_scope(self, frame: pd.DataFrame, scope: Mapping[str, str], date_column: str) -> int:
        """One transaction: the scope's stored rows read as a frame, its stale rows deleted by
        key, the new or changed rows stamped and written in bulk (unchanged ones untouched)."""
        new = as_frame(self.table, frame)
        now = datetime_to_text(self.clock())
        with self.transaction() as unit:
            assert isinstance(unit, SqlUnit)
            in_scope = bulk_read.read_rows(
                unit.connection, self.table, self.sql, [[self._in_scope(scope, date_column)]]
            )
            new_keys = key_index(new, self.table.key)
            unseen = new[~new_keys.isin(key_index(in_scope, self.table.key))]
            moved = self._stored(unit, self._maybe_stored(unseen, scope, date_column))
            existing = pd.concat([in_scope, moved], ignore_index=True) if len(moved) else in_scope
            stamped, same = stamp_rows(self.table, existing, new, now)
            stale = in_scope[~key_index(in_scope, self.table.key).isin(new_keys)]
            removed = unit.remove(self._keys(stale))
            stored = key_index(existing, self.table.key)
            bulk_write.write_rows(unit.connection, self.table, self.sql, stamped[~same], stored)
        return removed + int((~same).sum())

    def _maybe_stored(
        self, rows: pd.DataFrame, scope: Mapping[str, str], date_column: str
    ) -> pd.DataFrame:
        """Of new rows missing from the scope's stored rows, those that may be stored outside
        it. When the key is (athlete, date), a row inside the scope would have been read with
        it, so only rows outside it need looking up (a full recompute's are all inside)."""
        if set(self.table.key) != {"athleteId", date_column} or rows.empty:
            return rows
        inside = rows[date_column] >= rows["athleteId"].map(scope)
        return rows[~inside.fillna(False).astype(bool)]

    def _in_scope(self, scope: Mapping[str, str], date_column: str) -> sa.ColumnElement[bool]:
        """Each athlete's rows dated on/after its scope date, athletes grouped by that date."""
        by_since: dict[str, list[str]] = {}
        for athlete, since in scope.items():
            by_since.setdefault(since[:10], []).append(athlete)
        return sa.or_(
            sa.false(),
            *(
                sa.and_(
                    self.sql.c.athleteId.in_(athletes[start : start + MAX_IN]),
                    sa.true()
                    if since <= EVERY_DATE
                    else self.sql.c[date_column] >= date.fromisoformat(since),
                )
                for since, athletes in by_since.items()
                for start in range(0, len(athletes), MAX_IN)
            ),
        )

    def _stored(self, unit: SqlUnit, rows: pd.DataFrame) -> pd.DataFrame:
        """The stored rows with the keys of `rows`."""
        return bulk_read.stored_rows(unit.connection, self.table, self.sql, rows)

    def _keys(self, rows: pd.DataFrame) -> list[Key]:
        """Frame-form keys as the canonical values SQL binds (dates as dates)."""
        parts = []
        for name in self.table.key:
            kind = self.table.column(name).type
            values = rows[name].tolist()
            if kind is not ColumnType.STRING:
                values = [cell_from_frame(kind, value) for value in values]
            parts.append(values)
        return list(zip(*parts, strict=True))

    def scan(
        self,
        filters: Mapping[str, Any],
        after: Key | None,
        limit: int,
        deadline: float | None = None,
    ) -> list[Row]:
        key_columns = [self.sql.c[n] for n in self.table.key]
        query = sa.select(self.sql).order_by(*key_columns).limit(limit)
        for name, value in filters.items():
            query = query.where(self.sql.c[name] == value)
        if after is not None:
            query = query.where(sa.tuple_(*key_columns) > sa.tuple_(*after))
        with self.database.transaction(deadline, table=self.table.name) as connection:
            return [from_db(self.table, dict(r)) for r in connection.execute(query).mappings()]

    def initialize(self) -> None:
        from storage.migrations import create_schema

        create_schema(self.database)

    def shutdown(self) -> None:
        self.database.dispose()

    def health(self) -> dict[str, Any]:
        return self.database.health()


def _utc_day(value: date | datetime) -> str:
    """A DATE, or a timestamp (aware on PostgreSQL, naive UTC on SQLite), as its UTC day."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d")
