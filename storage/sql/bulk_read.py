"""Whole SQL tables (or the rows a query selects) read into one typed frame in frame form
(dates, timestamps and JSON as text, ints nullable): the bulk read of ingest and recompute.
Rows come from the driver's cursor as plain tuples and each column is converted at once, never
cell by cell through SQLAlchemy's result rows or the row codecs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storage.codecs.structured import json_text, stamps_text, utc_microseconds
from storage.sql.bulk_write import run_statement, staged
from storage.tables import Column, ColumnType, Table

STREAM_ROWS = 50_000  # rows fetched and converted at a time: bounds the memory of a big read


def read_rows(
    connection: sa.Connection,
    table: Table,
    sql: sa.Table,
    queries: Sequence[Sequence[sa.ColumnElement[bool]]],
    source: sa.FromClause | None = None,
) -> pd.DataFrame:
    """The rows matching any of `queries` (each a list of conditions, run one after the
    other; `source`: a join of `sql`), streamed and converted to one frame in batches."""
    dialect = connection.dialect.name
    columns = [_selected(sql.c[c.name], c, dialect) for c in table.all_columns]
    parts: list[pd.DataFrame] = []
    batch: list[tuple[Any, ...]] = []
    for where in queries:
        query = sa.select(*columns).select_from(sql if source is None else source).where(*where)
        for chunk in _fetch(connection, query):
            batch.extend(chunk)
            if len(batch) >= STREAM_ROWS:
                parts.append(_frame(table, batch, dialect))
                batch = []
    if batch or not parts:
        parts.append(_frame(table, batch, dialect))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def stored_rows(
    connection: sa.Connection, table: Table, sql: sa.Table, keys: pd.DataFrame
) -> pd.DataFrame:
    """The stored rows with the keys of `keys` (frame form), by one join on a staged copy of
    the keys: no statement grows with the number of keys."""
    if keys.empty:
        return read_rows(connection, table, sql, [])
    names = list(table.key)
    with staged(connection, table, sql, "keys", names, keys) as copy:
        on = sa.and_(*(sql.c[name] == copy.c[name] for name in names))
        return read_rows(connection, table, sql, [[]], source=sql.join(copy, on))


def earliest_by(
    connection: sa.Connection,
    sql: sa.Table,
    group: str,
    column: str,
    where: Sequence[sa.ColumnElement[bool]],
) -> list[tuple[Any, Any]]:
    """(value of `group`, smallest `column`) for each group of the rows matching `where`."""
    query = sa.select(sql.c[group], sa.func.min(sql.c[column])).where(*where).group_by(sql.c[group])
    return [(key, value) for key, value in connection.execute(query)]


def _fetch(connection: sa.Connection, query: sa.Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """The query's rows in batches, from the DBAPI cursor of the connection's transaction (a
    server-side cursor on PostgreSQL, so a big table is never held whole by the driver)."""
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = {name: _bound(value, dialect.name) for name, value in compiled.params.items()}
    escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
    parameters: tuple[Any, ...] | dict[str, Any] = (
        tuple(values[name] for name in compiled.positiontup or [])
        if compiled.positional
        else {escaped.get(name, name): value for name, value in values.items()}
    )
    named = {"name": "trainlog_bulk_read", "binary": True} if dialect.name == "postgresql" else {}
    with run_statement(connection, str(compiled), named) as cursor:
        cursor.execute(str(compiled), parameters)
        while chunk := cursor.fetchmany(STREAM_ROWS):
            yield chunk


def _bound(value: Any, dialect: str) -> Any:
    """A bound value as SQLAlchemy's SQLite types store it (PostgreSQL's driver adapts it)."""
    if dialect != "sqlite":
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _selected(column: sa.ColumnElement[Any], spec: Column, dialect: str) -> sa.ColumnElement[Any]:
    """Dates and JSON come back as the database's text (frame form needs text anyway),
    PostgreSQL's timestamps as whole microseconds since 1970, other values (SQLite's
    timestamps: naive UTC text) as the driver gives them: no per-cell result processing."""
    if spec.type in (ColumnType.DATE, ColumnType.JSON):
        return sa.cast(column, sa.Text).label(spec.name)
    if spec.type is ColumnType.DATETIME and dialect == "postgresql":  # EXTRACT: exact numeric
        return sa.cast(sa.extract("epoch", column) * 1_000_000, sa.BigInteger).label(spec.name)
    return sa.type_coerce(column, sa.types.NullType()).label(spec.name)


def _frame(table: Table, chunk: list[tuple[Any, ...]], dialect: str) -> pd.DataFrame:
    cells = np.empty((len(chunk), len(table.all_columns)), dtype=object)
    if chunk:
        cells[:] = chunk  # one C loop, where zip(*chunk) would build a tuple per column
    return pd.DataFrame(
        {
            column.name: _column(column.type, cells[:, place], dialect)
            for place, column in enumerate(table.all_columns)
        }
    )


def _column(kind: ColumnType, values: np.ndarray, dialect: str) -> pd.Series:
    """One column of driver values (an object array, None where NULL) in frame form."""
    missing = pd.isna(values)
    if kind is ColumnType.INT:
        return pd.Series(pd.array(values, dtype="Int64"))
    if kind is ColumnType.FLOAT:
        return pd.Series(np.where(missing, np.nan, values).astype("float64"))
    if kind is ColumnType.BOOL:  # SQLite keeps 0 and 1
        flags = np.where(missing, False, values).astype(bool)
        return pd.Series(pd.arrays.BooleanArray(flags, missing))
    if kind is ColumnType.DATETIME:
        return stamps_text(_timestamps(values, dialect))
    if kind is ColumnType.JSON:  # one text form whatever the database keeps (spaces, order)
        return pd.Series(
            [None if v is None else json_text(json.loads(v)) for v in values], dtype=object
        )
    return pd.Series(values, dtype=object)  # text, and dates as the database's ISO text


def _timestamps(values: np.ndarray, dialect: str) -> np.ndarray:
    """Microseconds since 1970 (PostgreSQL) or naive UTC text (SQLite) as datetime64[us]."""
    if dialect == "sqlite":
        return utc_microseconds(pd.Series(values, dtype=object))
    counts = pd.array(values, dtype="Int64")
    stamps = counts.to_numpy("int64", na_value=0).astype("datetime64[us]")
    return np.where(counts.isna(), np.datetime64("NaT", "us"), stamps)
