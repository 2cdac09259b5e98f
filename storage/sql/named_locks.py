"""Named locks a database provides to every process that uses it, held across several
transactions and the file writes between them: PostgreSQL session advisory locks (shared by
every host on the database), or for an SQLite file, which only one host can use, a lock file
per name beside it. Unlike a write transaction on SQLite, which stops every writer, they stop
only those that name the same thing (one session, one export file)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.errors import LockTimeout, PersistenceError
from storage.locks import acquire_lock
from storage.sql.database import Database, pipeline
from storage.sql.prepared import FetchedRow, Read, fetched

STRIPES = 1024  # lock files of an SQLite database: names share one when they hash alike


@dataclass
class Held:
    """What `holding_and_reading` yields: the connection holding the locks on PostgreSQL (else
    None), the row `first` returned once the locks were taken and, after the block, the row
    `last` returned as they were freed (None when that read failed: the caller reads again)."""

    connection: Connection | None
    first: FetchedRow | None = None
    last: FetchedRow | None = None


@contextmanager
def holding(database: Database, keys: Sequence[str], timeout: float) -> Iterator[Connection | None]:
    """Hold every lock named in `keys` (taken in sorted order, so two holders never wait on
    each other), waiting at most `timeout` seconds for each: LockTimeout past that.

    On PostgreSQL it yields the connection that holds the locks, in autocommit mode: a
    caller may run its transaction on it (`Database.transaction(connection=...)`) instead
    of taking a second connection from the pool. Elsewhere it yields None."""
    with holding_and_reading(database, keys, timeout) as held:
        yield held.connection


@contextmanager
def holding_and_reading(
    database: Database,
    keys: Sequence[str],
    timeout: float,
    *,
    first: Read | None = None,
    last: Read | None = None,
) -> Iterator[Held]:
    """`holding`, with a read once the locks are taken and one after a block that ended
    without an error, as they are freed. On PostgreSQL each read goes in the round trip of
    the lock statement, and each runs in a snapshot of its own (READ COMMITTED): `first`
    sees every write committed under these locks before."""
    names = sorted(set(keys))
    if database.dialect == "postgresql":
        with _advisory(database, names, timeout, first, last) as held:
            yield held
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
        held = Held(None)
        if first is not None:
            with database.autocommit() as connection:
                held.first = first.first(connection)
        yield held
        if last is not None:
            with suppress(PersistenceError), database.autocommit() as connection:
                held.last = last.first(connection)


@contextmanager
def _advisory(
    database: Database, names: list[str], timeout: float, first: Read | None, last: Read | None
) -> Iterator[Held]:
    """Session advisory locks: the timeout and every lock in one statement (PostgreSQL
    evaluates a select list in order), all released in another, both on the DBAPI cursor
    (no SQLAlchemy result set-up: they run around every save), each pipelined with its read.
    The timeout is local to the lock statement's implicit transaction, so it bounds the wait
    for these locks (and, pipelined with it, for `first`) and nothing after. The engine keeps
    every session at READ COMMITTED (sql/engine.py): `first`, in that same transaction, still
    reads in a snapshot of its own, taken after the wait."""
    locks = ", ".join("pg_advisory_lock(hashtext(%s))" for _ in names)
    take = f"SELECT set_config('lock_timeout', %s, true), {locks}"
    dbapi_error: type[Exception] = database.engine.dialect.loaded_dbapi.Error
    with database.translated(), database.engine.connect() as connection:
        session = connection.execution_options(isolation_level="AUTOCOMMIT")
        raw = session.connection.dbapi_connection
        cursor, reader = session.connection.cursor(), session.connection.cursor()
        held = Held(session)
        try:
            try:
                with pipeline(raw) if first is not None else nullcontext():
                    cursor.execute(take, (str(max(int(timeout * 1000), 1)), *names))
                    if first is not None:
                        first.send(reader)
                if first is not None:
                    held.first = fetched(reader)
            except dbapi_error as error:
                read_failed = first is not None and _ran(cursor)  # the locks were taken
                raise _taking_error(error, dbapi_error, names, timeout, read_failed) from None
            yield held
        except BaseException:
            _release(session, cursor, reader, None, held)
            raise
        _release(session, cursor, reader, last, held)


def _taking_error(
    error: Exception,
    dbapi_error: type[Exception],
    names: list[str],
    timeout: float,
    read_failed: bool,
) -> Exception:
    """What to raise for the lock statement's error, or for the read's when the locks were
    taken (one that waited past the timeout for a table lock, say)."""
    if "lock timeout" not in str(error):
        statement = "the read after taking the locks" if read_failed else "taking the locks"
        return DBAPIError.instance(statement, None, error, dbapi_error)
    if not read_failed:
        return LockTimeout(f"{' or '.join(names)} stayed locked by another worker for {timeout:g}s")
    return LockTimeout(
        f"holding {' and '.join(names)}, a read waited over {timeout:g}s for a table lock "
        "(held by a schema change or a long transaction)"
    )


def _release(session: Connection, cursor: Any, reader: Any, last: Read | None, held: Held) -> None:
    """Free every lock the connection holds, reading `last` in the same round trip. If the
    read fails the locks are freed again on their own and the connection goes back to the
    pool, `held.last` None (the caller reads again); if freeing fails, the connection is
    closed (the server frees its locks)."""
    try:
        raw = session.connection.dbapi_connection  # raises if SQLAlchemy invalidated it
        with pipeline(raw) if last is not None else nullcontext():
            cursor.execute("SELECT pg_advisory_unlock_all()")
            if last is not None:
                last.send(reader)
        if last is not None:
            held.last = fetched(reader)
    except Exception:
        if last is None or not _freed_again(cursor):
            session.invalidate()
            return
    cursor.close()
    reader.close()


def _freed_again(cursor: Any) -> bool:
    """After the unlock's pipeline failed: whether the connection still frees its locks
    (only the read failed) and so may go back to the pool."""
    try:
        cursor.execute("SELECT pg_advisory_unlock_all()")
    except Exception:
        return False
    return True


def _ran(cursor: Any) -> bool:
    """Whether the cursor's statement completed (in a pipeline that failed later on)."""
    from psycopg.pq import ExecStatus  # only a psycopg connection gets here

    result = getattr(cursor, "pgresult", None)
    return result is not None and result.status == ExecStatus.TUPLES_OK


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
