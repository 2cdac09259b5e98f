"""Repository over one SQL table; writers of a table are serialised (see Database.transaction)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from storage.repositories.base import Key, Repository, Unit
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.tables import ColumnType, Table
from storage.values import Row, parse_datetime

CHUNK = 500


@dataclass
class SqlUnit(Unit):
    connection: sa.Connection = None  # type: ignore[assignment]
    sql: sa.Table = None  # type: ignore[assignment]
    naive_datetimes: bool = False

    def fetch(self, keys: Sequence[Key]) -> dict[Key, Row]:
        found: dict[Key, Row] = {}
        columns = [self.sql.c[name] for name in self.table.key]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            match = (
                columns[0].in_([k[0] for k in chunk])
                if len(columns) == 1
                else sa.tuple_(*columns).in_(chunk)
            )
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
        for key in keys:
            match = sa.and_(*(self.sql.c[n] == v for n, v in zip(self.table.key, key, strict=True)))
            removed += self.connection.execute(sa.delete(self.sql).where(match)).rowcount or 0
        return removed

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
        if value is not None and column.type is ColumnType.DATETIME:
            value = parse_datetime(value)
        elif value is not None and column.type is ColumnType.FLOAT:
            value = float(value)
        row[column.name] = value
    return row


class SqlRepository(Repository):
    backend_name = "sql"

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
