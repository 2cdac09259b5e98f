"""The SQLAlchemy engine for a database URL: SQLite in WAL mode with a busy timeout and files
only their owner reads; PostgreSQL pooled, its connections pinged only when they may be gone."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from storage.errors import ConfigurationError
from storage.options import redacted

SQLITE_BUSY_TIMEOUT_MS = 30_000
# a pooled PostgreSQL connection idle longer than this is pinged before use (PgBouncer's
# server_check_delay); one used more recently goes straight to work, and if the server
# went away meanwhile the job fails UNAVAILABLE (transient) and its retry gets a new one
PING_IDLE_AFTER_S = 2.0


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"cannot create {folder} for the SQLite database {parsed.database}: "
                f"{error.strerror}",
                path=str(folder),
            ) from None
        private_sqlite_file(Path(parsed.database))
    # no pre-ping: a file database has no server connection to lose, and the ping would
    # cost every transaction a statement; statements' values never in an error or a log
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
    )
    path = Path(parsed.database) if parsed.database and parsed.database != ":memory:" else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        _enable_wal(cursor)
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if path is not None:
            record.info["file"] = _file_identity(path)

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        """A pooled connection keeps the file it opened: after the database file was deleted
        or replaced (a reset, a restore) its writes would go to a file nobody can open again,
        and be lost. Such a connection is dropped and the pool opens the file now there."""
        if path is not None and record.info.get("file") != _file_identity(path):
            raise DisconnectionError(f"{path} was replaced or removed since it was opened")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def private_sqlite_file(path: Path) -> None:
    """Make the database file (and its WAL and shared-memory files, which SQLite creates with
    the file's mode) readable by its owner only: it may hold tokens and athletes' data."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # empty: a new DB
        return
    except FileExistsError:
        pass
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the SQLite database {path}: {error.strerror}", path=str(path)
        ) from None
    for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = existing.stat().st_mode
            if mode & 0o077:
                os.chmod(existing, mode & 0o700)
        except OSError:  # gone meanwhile, or another user's: SQLite says so when it opens it
            continue


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL. SQLite answers "database is locked" at once, without its busy
    handler, when another process is switching a new file too (two workers' first start):
    seen in 1 of 3 such opens here, so it is retried for up to the busy timeout."""
    give_up = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > give_up:
                raise
            time.sleep(0.01)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _postgres_engine(engine: Engine, suspect_since: Callable[[], float]) -> Engine:
    """Ping a pooled connection at checkout only when it sat idle past PING_IDLE_AFTER_S, or
    was last used before `suspect_since()` (when a connection failed: the server may have
    restarted under all of them). SQLAlchemy's pre-ping would cost every checkout a round
    trip, two of a save's eleven."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        pin_read_committed(dbapi_connection)
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since", 0.0)
        if time.monotonic() - idle_since <= PING_IDLE_AFTER_S and idle_since > suspect_since():
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # the pool drops this connection and checks out another (a new one if need be)
            raise DisconnectionError(f"a pooled connection was lost: {error}") from None

    return engine


def pin_read_committed(dbapi_connection: Any) -> None:
    """Keep a new session at READ COMMITTED, whatever the server's or the role's default:
    the read pipelined with a lock statement shares its implicit transaction, and only
    under READ COMMITTED does it get a snapshot of its own, taken after the wait for the
    lock (sql/named_locks.py). One statement per new connection."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"
        )
    finally:
        dbapi_connection.autocommit = autocommit


class _PipelineExitNote(logging.Filter):
    """psycopg logs a WARNING when ending a pipeline fails after its block raised, which is
    what a lost connection does: the block's own error reaches the caller, translated
    (UNAVAILABLE, retried), so the note would be a second, unstructured line for it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "error ignored terminating %r: %s"


def quiet_pipeline_exit_notes() -> None:
    """Drop psycopg's pipeline-exit notes (`_PipelineExitNote`); its other records stay."""
    psycopg_log = logging.getLogger("psycopg")
    if not any(isinstance(known, _PipelineExitNote) for known in psycopg_log.filters):
        psycopg_log.addFilter(_PipelineExitNote())


def make_engine(url: str, suspect_since: Callable[[], float] = lambda: 0.0) -> Engine:
    """Pooled engine (PostgreSQL connections pinged after sitting idle, or when one failed
    since they were last used: `suspect_since`); SQLite in WAL mode, busy timeout."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError(
            f"TRAINLOG_DATABASE_URL is not a database URL: {redacted(url)}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # READ COMMITTED for the transactions SQLAlchemy begins, and (pin_read_committed)
        # for the session's own default, which BEGIN sent as SQL and pipelines run under;
        # statements' values never in an error's text or a log (a token may be one)
        engine = create_engine(
            parsed,
            pool_size=5,
            max_overflow=5,
            isolation_level="READ COMMITTED",
            hide_parameters=True,
        )
        quiet_pipeline_exit_notes()
        return _postgres_engine(engine, suspect_since)
    raise ConfigurationError(
        f"TRAINLOG_DATABASE_URL uses {parsed.get_backend_name()!r}; use sqlite or postgresql"
    )
