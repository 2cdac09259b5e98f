"""Statements compiled once for a dialect and run on the DBAPI cursor of a SQLAlchemy
connection (inside its transaction). For the few statements every save runs, SQLAlchemy's
per-execution work (cache key, execution context, result set-up) costs more than SQLite's
own (docs/benchmarks.md). Values go through
the same bind processors SQLAlchemy would apply (dates, JSON, booleans)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from storage.sql.errors import driver_error

Processor = Callable[[Any], Any] | None
FetchedRow = tuple[Any, ...]  # a row as the driver returns it


class PreparedStatement:
    """One statement in the dialect's own SQL and parameter style."""

    def __init__(self, statement: sa.ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a DML or query statement
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or []) if self.positional else list(compiled.binds)
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        self._names = [(name, escaped.get(name, name)) for name in names]
        self._processors: list[Processor] = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        ]
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processed = [
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name, _ in self._names), self._processors, strict=True
            )
        ]
        if self.positional:
            return tuple(processed)
        return {key: value for (_, key), value in zip(self._names, processed, strict=True)}

    def execute(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (one executemany); DBAPI errors come out as SQLAlchemy's
        (`sql/errors.driver_error`)."""
        if rows:
            self._run(connection, [self.parameters(row) for row in rows], many=True)

    def first(self, connection: Connection, values: Mapping[str, Any]) -> FetchedRow | None:
        """The first row a query returns, as the driver gives it (no result processing)."""
        return self._run(connection, [self.parameters(values)], many=False)

    def _run(self, connection: Connection, parameters: list[Any], *, many: bool) -> Any:
        cursor = connection.connection.cursor()
        try:
            if many and len(parameters) > 1:
                cursor.executemany(self.sql, parameters)
                return None
            cursor.execute(self.sql, parameters[0])
            return fetched(cursor) if not many else None
        except self._dbapi_error as error:
            raise driver_error(connection, self.sql, error) from error
        finally:
            cursor.close()


@dataclass(frozen=True)
class Read:
    """A one-row query and its values, handed to code that has a round trip to spare
    (`named_locks.holding_and_reading` sends it with a lock statement)."""

    statement: PreparedStatement
    values: Mapping[str, Any]

    def first(self, connection: Connection) -> FetchedRow | None:
        return self.statement.first(connection, self.values)

    def send(self, cursor: Any) -> None:
        """Execute on a DBAPI cursor; in a pipeline the row arrives as the pipeline ends
        (`fetched(cursor)`), and errors are the driver's."""
        cursor.execute(self.statement.sql, self.statement.parameters(self.values))


def fetched(cursor: Any) -> FetchedRow | None:
    """The cursor's next row as a plain tuple (psycopg's and sqlite3's rows alike)."""
    row = cursor.fetchone()
    return None if row is None else tuple(row)
