"""Frames of stamped rows written to one SQL table in bulk: COPY on PostgreSQL (new rows
straight into the table, changed ones through a temporary table and one upsert by key), one
executemany of an upsert on SQLite. Values are converted a column at
a time into what the driver takes, never cell by cell through SQLAlchemy's types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storage.codecs.structured import utc_microseconds
from storage.csv.frames import key_index
from storage.sql.errors import driver_error
from storage.tables import ColumnType, Table


def write_rows(
    connection: sa.Connection, table: Table, sql: sa.Table, rows: pd.DataFrame, stored: pd.Index
) -> None:
    """Write whole rows (already stamped) by key; `stored`: the keys the table holds now (read
    in this transaction). PostgreSQL: new keys by one COPY straight into the table, the others
    staged by COPY and applied by one INSERT … ON CONFLICT; SQLite: one executemany of that
    upsert."""
    rows = rows.drop_duplicates(list(table.key), keep="last")
    if rows.empty:
        return
    names = list(table.headers)
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    keys = ", ".join(quote(name) for name in table.key)
    updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n not in table.key)
    conflict = f"ON CONFLICT ({keys}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING")
    target = connection.dialect.identifier_preparer.format_table(sql)
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" for _ in names)
        records = _records(table, names, rows, "sqlite")
        _run(connection, f"INSERT INTO {target} ({columns}) VALUES ({marks}) {conflict}", records)
        return
    known = key_index(rows, table.key).isin(stored)
    if (~known).any():
        records = _records(table, names, rows[~known], "postgresql")
        _run(connection, f"COPY {target} ({columns}) FROM STDIN", records, copy=True)
    if known.any():
        with staged(connection, table, sql, "rows", names, rows[known]) as copy:
            _run(
                connection,
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {copy.name} {conflict}",
            )


@contextmanager
def staged(
    connection: sa.Connection,
    table: Table,
    sql: sa.Table,
    purpose: str,
    names: Sequence[str],
    rows: pd.DataFrame,
) -> Iterator[sa.TableClause]:
    """`rows`' columns `names` copied into an empty temporary table shaped like `sql`'s, for
    the length of the block (COPY on PostgreSQL, executemany on SQLite)."""
    name = f"trainlog_{purpose}_{table.name}"
    quote = connection.dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    target = connection.dialect.identifier_preparer.format_table(sql)
    records = _records(table, names, rows, connection.dialect.name)
    if connection.dialect.name == "postgresql":
        _run(
            connection,
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {target} WITH NO DATA",
        )
        _run(connection, f"TRUNCATE {name}")
        _run(connection, f"COPY {name} ({columns}) FROM STDIN", records, copy=True)
    else:
        _run(connection, f"DROP TABLE IF EXISTS temp.{name}")
        _run(connection, f"CREATE TEMPORARY TABLE {name} AS SELECT {columns} FROM {target} WHERE 0")
        marks = ", ".join("?" for _ in names)
        _run(connection, f"INSERT INTO {name} ({columns}) VALUES ({marks})", records)
    try:
        yield sa.table(name, *(sa.column(n) for n in names))
    finally:
        if connection.dialect.name == "sqlite":
            _run(connection, f"DROP TABLE IF EXISTS temp.{name}")


def _run(
    connection: sa.Connection,
    statement: str,
    records: list[tuple[Any, ...]] | None = None,
    *,
    copy: bool = False,
) -> None:
    """One statement in the connection's transaction (`records`: run for each; `copy`: a
    COPY … FROM STDIN fed with them)."""
    with run_statement(connection, statement) as cursor:
        if copy and records is not None:
            with cursor.copy(statement) as stream:
                for record in records:
                    stream.write_row(record)
        elif records is not None:
            cursor.executemany(statement, records)
        else:
            cursor.execute(statement)


@contextmanager
def run_statement(
    connection: sa.Connection, statement: str, options: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """A DBAPI cursor of the connection's transaction (`options`: for the driver's cursor());
    driver errors come out as SQLAlchemy's, which the transaction translates."""
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor(**(options or {}))
    try:
        yield cursor
    except dbapi_error as error:
        raise driver_error(connection, statement, error) from error
    finally:
        cursor.close()


def _records(
    table: Table, names: Sequence[str], rows: pd.DataFrame, dialect: str
) -> list[tuple[Any, ...]]:
    """The rows' columns `names` as the driver's parameters, converted column by column."""
    cells = [_db_values(table.column(name).type, rows[name], dialect) for name in names]
    return list(zip(*cells, strict=True))


def _db_values(kind: ColumnType, series: pd.Series, dialect: str) -> list[Any]:
    if kind is ColumnType.DATETIME and dialect == "sqlite":  # SQLAlchemy's naive UTC text
        stamps = utc_microseconds(series)
        text = np.datetime_as_string(stamps, unit="us")
        if len(text):  # "YYYY-MM-DDTHH:MM:SS.ffffff" -> "YYYY-MM-DD HH:MM:SS.ffffff", in place
            text.view("<U1").reshape(len(text), -1)[:, 10] = " "
        return pd.Series(text, dtype=object).where(~np.isnat(stamps), None).tolist()  # type: ignore[no-any-return]
    if kind is ColumnType.BOOL and dialect == "sqlite":
        flags = series.astype("boolean")
        return [None if v is None else int(v) for v in flags.to_numpy(object, na_value=None)]
    return series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[no-any-return]
