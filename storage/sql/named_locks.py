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

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.errors import LockTimeout
from storage.locks import acquire_lock
from storage.sql.database import Database
from storage.sql.errors import translated

STRIPES = 1024  # lock files of an SQLite database: names share one when they hash alike


@contextmanager
def holding(database: Database, keys: Sequence[str], timeout: float) -> Iterator[None]:
    """Hold every lock named in `keys` (taken in sorted order, so two holders never wait on
    each other), waiting at most `timeout` seconds for each: LockTimeout past that."""
    names = sorted(set(keys))
    if database.dialect == "postgresql":
        with _advisory(database, names, timeout):
            yield
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
        yield


@contextmanager
def _advisory(database: Database, names: list[str], timeout: float) -> Iterator[None]:
    with translated(), database.engine.connect() as connection:
        session = connection.execution_options(isolation_level="AUTOCOMMIT")
        session.exec_driver_sql(f"SET lock_timeout = {max(int(timeout * 1000), 1)}")
        try:
            for name in names:
                try:
                    session.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": name})
                except Exception as error:
                    if "lock timeout" in str(error):
                        raise LockTimeout(
                            f"{name} stayed locked by another worker for {timeout:g}s"
                        ) from None
                    raise
            yield
        finally:
            try:
                session.execute(text("SELECT pg_advisory_unlock_all()"))
                session.exec_driver_sql("RESET lock_timeout")
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
