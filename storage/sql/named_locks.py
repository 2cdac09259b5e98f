"""Named locks a database provides to every process that uses it, held across several
transactions and the file writes between them: PostgreSQL session advisory locks (shared by
every host on the database), or for an SQLite file, which only one host can use, a lock file
per name beside it. Unlike a write transaction on SQLite, which stops every writer, they stop
only those that name the same thing (one session, one export file)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.errors import LockTimeout
from storage.locks import acquire_lock
from storage.sql.database import Database

STRIPES = 1024  # lock files of an SQLite database: names share one when they hash alike


@contextmanager
def holding(database: Database, keys: Sequence[str], timeout: float) -> Iterator[Connection | None]:
    """Hold every lock named in `keys` (taken in sorted order, so two holders never wait on
    each other), waiting at most `timeout` seconds for each: LockTimeout past that.

    On PostgreSQL it yields the connection that holds the locks, in autocommit mode: a
    caller may run its transaction on it (`Database.transaction(connection=...)`) instead
    of taking a second connection from the pool. Elsewhere it yields None."""
    names = sorted(set(keys))
    if database.dialect == "postgresql":
        with _advisory(database, names, timeout) as connection:
            yield connection
        return
    stripes = sorted(
        {int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % STRIPES for name in names}
    )
    with ExitStack() as stack:
        folder = _lock_folder(database)
        for stripe in stripes:
            if folder is None:
                stack.enter_context(_memory_lock(database, stripe, timeout))
            else:
                path = folder / f"{stripe:04d}.lock"
                stack.enter_context(acquire_lock(path, exclusive=True, timeout=timeout))
        yield None


@contextmanager
def _advisory(database: Database, names: list[str], timeout: float) -> Iterator[Connection]:
    """Session advisory locks: the timeout and every lock in one statement (PostgreSQL
    evaluates a select list in order), all released in another, both on the DBAPI cursor
    (no SQLAlchemy result set-up: they run around every save). The timeout is local to the
    statement's own transaction, so it bounds the wait for these locks and nothing after."""
    locks = ", ".join("pg_advisory_lock(hashtext(%s))" for _ in names)
    take = f"SELECT set_config('lock_timeout', %s, true), {locks}"
    dbapi_error: type[Exception] = database.engine.dialect.loaded_dbapi.Error
    with database.translated(), database.engine.connect() as connection:
        session = connection.execution_options(isolation_level="AUTOCOMMIT")
        cursor = session.connection.cursor()
        try:
            try:
                cursor.execute(take, (str(max(int(timeout * 1000), 1)), *names))
            except dbapi_error as error:
                if "lock timeout" in str(error):
                    raise LockTimeout(
                        f"{' or '.join(names)} stayed locked by another worker for {timeout:g}s"
                    ) from None
                raise DBAPIError.instance(take, None, error, dbapi_error) from None
            yield session
        finally:
            try:
                cursor.execute("SELECT pg_advisory_unlock_all()")
                cursor.close()
            except Exception:
                session.invalidate()  # closed: the server releases what it held


def _lock_folder(database: Database) -> Path | None:
    path = make_url(database.url).database
    if not path or path == ":memory:":
        return None
    file = Path(path)
    folder = file.parent / f".{file.name}.locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


@contextmanager
def _memory_lock(database: Database, stripe: int, timeout: float) -> Iterator[None]:
    """An in-memory SQLite database lives in one process: its locks are threads' locks."""
    lock = database.local_locks.setdefault(stripe, threading.Lock())
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"lock {stripe} stayed taken for {timeout:g}s")
    try:
        yield
    finally:
        lock.release()
