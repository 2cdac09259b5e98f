"""Translate SQLAlchemy/DBAPI errors into PersistenceErrors where they happen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, exc

from storage.errors import AlreadyExists, DeadlineExceeded, PersistenceError, Unavailable

_DEADLINE_HINTS = ("interrupted", "canceling statement due to statement timeout", "querycanceled")
_BUSY_HINTS = ("database is locked", "database is busy")
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE for a duplicate key
_SQLITE_DUPLICATES = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
# errors a lost connection or server raises (among others): UNAVAILABLE, transient
CONNECTION_FAILURES = exc.OperationalError | exc.InterfaceError | exc.DisconnectionError


def driver_error(connection: Connection, statement: str, error: Any) -> exc.StatementError:
    """A driver's error on a DBAPI cursor of `connection` as SQLAlchemy's own, which the
    transaction translates, and handled as SQLAlchemy handles its own: without the
    statement's values (they may be secrets), and a lost connection invalidated, so the pool
    drops it instead of resetting it (a reset that fails logs the error again, at ERROR)."""
    dialect = connection.dialect
    try:
        lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
    except exc.SQLAlchemyError:  # invalidated already
        lost = False
    if lost:
        connection.invalidate()
    return exc.DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )


def translate(error: exc.SQLAlchemyError, *, table: str | None = None) -> PersistenceError:
    text = str(getattr(error, "orig", error) or error).lower()
    kind = type(getattr(error, "orig", None)).__name__.lower()
    if any(hint in text or hint in kind for hint in _DEADLINE_HINTS):
        return DeadlineExceeded(
            f"query on {table or 'the database'} ran past its deadline", table=table
        )
    if isinstance(error, exc.IntegrityError):
        if _is_duplicate(error.orig, text):
            return AlreadyExists(f"{table or 'row'}: {text.splitlines()[0][:200]}", table=table)
        return PersistenceError(  # INTERNAL: values are checked before they reach SQL
            f"{table or 'a table'}: a row trainlog wrote broke a constraint of the table "
            f"(a bug to report, not a problem with what was sent): {text.splitlines()[0][:200]}",
            table=table,
        )
    if any(hint in text for hint in _BUSY_HINTS):
        return Unavailable(f"database busy: {text.splitlines()[0][:200]}", table=table)
    if isinstance(error, CONNECTION_FAILURES | exc.TimeoutError):
        return Unavailable(f"database unavailable: {text.splitlines()[0][:200]}", table=table)
    return PersistenceError(f"database error: {text.splitlines()[0][:200]}", table=table)


def _is_duplicate(driver_error: Any, text: str) -> bool:
    """A unique or primary-key violation (a duplicate key), as opposed to a NOT NULL, CHECK or
    foreign-key one: by SQLSTATE on PostgreSQL, by extended error code on SQLite."""
    sqlstate = getattr(driver_error, "sqlstate", None)  # psycopg
    if sqlstate:
        return bool(sqlstate == _UNIQUE_VIOLATION)
    name = getattr(driver_error, "sqlite_errorname", None)  # sqlite3
    if name:
        return name in _SQLITE_DUPLICATES
    return "unique" in text or "duplicate" in text


@contextmanager
def translated(table: str | None = None) -> Iterator[None]:
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate(error, table=table) from None
