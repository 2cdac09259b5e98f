"""Translate SQLAlchemy/DBAPI errors into PersistenceErrors where they happen."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from storage.errors import AlreadyExists, DeadlineExceeded, PersistenceError, Unavailable

_DEADLINE_HINTS = ("interrupted", "canceling statement due to statement timeout", "querycanceled")
_BUSY_HINTS = ("database is locked", "database is busy")
# errors a lost connection or server raises (among others): UNAVAILABLE, transient
CONNECTION_FAILURES = exc.OperationalError | exc.InterfaceError | exc.DisconnectionError


def translate(error: exc.SQLAlchemyError, *, table: str | None = None) -> PersistenceError:
    text = str(getattr(error, "orig", error) or error).lower()
    kind = type(getattr(error, "orig", None)).__name__.lower()
    if any(hint in text or hint in kind for hint in _DEADLINE_HINTS):
        return DeadlineExceeded(
            f"query on {table or 'the database'} ran past its deadline", table=table
        )
    if isinstance(error, exc.IntegrityError):
        return AlreadyExists(f"{table or 'row'}: {text.splitlines()[0][:200]}", table=table)
    if any(hint in text for hint in _BUSY_HINTS):
        return Unavailable(f"database busy: {text.splitlines()[0][:200]}", table=table)
    if isinstance(error, CONNECTION_FAILURES | exc.TimeoutError):
        return Unavailable(f"database unavailable: {text.splitlines()[0][:200]}", table=table)
    return PersistenceError(f"database error: {text.splitlines()[0][:200]}", table=table)


@contextmanager
def translated(table: str | None = None) -> Iterator[None]:
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate(error, table=table) from None
