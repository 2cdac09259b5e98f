"""The SQL engine from the settings, transactions with per-call deadlines, and health."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError

from storage.errors import ConfigurationError
from storage.sql.errors import translated

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
    # cost every transaction a statement
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
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


def _postgres_engine(engine: Engine) -> Engine:
    """Ping a pooled connection at checkout only when it sat idle past PING_IDLE_AFTER_S:
    SQLAlchemy's pre-ping would cost each checkout a round trip, two of a save's eleven."""

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_IDLE_AFTER_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # the pool drops this connection and checks out another (a new one if need be)
            raise DisconnectionError(f"a pooled connection was lost: {error}") from None

    return engine


def make_engine(url: str) -> Engine:
    """Pooled engine (PostgreSQL connections pinged after sitting idle); SQLite in WAL mode,
    busy timeout."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError(f"TRAINLOG_DATABASE_URL={url!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return _postgres_engine(create_engine(parsed, pool_size=5, max_overflow=5))
    raise ConfigurationError(
        f"TRAINLOG_DATABASE_URL uses {parsed.get_backend_name()!r}; use sqlite or postgresql"
    )


@contextmanager
def _explicit_transaction(connection: Connection, *, pipelined: bool = False) -> Iterator[None]:
    """BEGIN ... COMMIT sent as SQL on a connection in autocommit mode (SQLAlchemy's own
    transaction would be a no-op there); ROLLBACK when the block raises. `pipelined`: on
    psycopg, every statement up to COMMIT goes to the server at COMMIT, in one round trip."""
    dbapi = connection.dialect.loaded_dbapi
    raw: Any = connection.connection.dbapi_connection
    batch = raw.pipeline() if pipelined and _pipelines(raw) else nullcontext()
    try:
        try:
            with batch:
                connection.exec_driver_sql("BEGIN")
                yield
                connection.exec_driver_sql("COMMIT")
        except dbapi.Error as error:  # a pipelined statement's, raised by the pipeline's sync
            raise DBAPIError.instance("COMMIT", None, error, dbapi.Error) from error
    except BaseException:
        try:
            connection.exec_driver_sql("ROLLBACK")
        except Exception:
            connection.invalidate()  # closed: the server rolled back what it had
        raise


def _pipelines(raw: Any) -> bool:
    """psycopg's pipeline mode, when its libpq has it (14 and later)."""
    if not callable(getattr(raw, "pipeline", None)):
        return False
    import psycopg  # an optional dependency: only a psycopg connection gets here

    return bool(psycopg.Pipeline.is_supported())


class Database:
    """One engine; `transaction()` yields a connection, committed on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self.local_locks: dict[int, threading.Lock] = {}  # named locks of an in-memory file

    @contextmanager
    def transaction(
        self,
        deadline: float | None = None,
        *,
        write: bool = False,
        lock_key: str | None = None,
        lock_keys: Sequence[str] = (),
        table: str | None = None,
        exclusive: bool = False,
        connection: Connection | None = None,
        pipelined: bool = False,
    ) -> Iterator[Connection]:
        """A transaction, optionally cut off after `deadline` seconds (DeadlineExceeded).

        Writers are serialised per `lock_key` (and each of `lock_keys`, taken in sorted order
        so two writers never wait on each other): PostgreSQL transaction advisory locks, or
        SQLite's BEGIN IMMEDIATE (one writer at a time for the whole file). `connection`: a
        PostgreSQL connection in autocommit mode the caller holds (named_locks.holding's) to
        run the transaction on, else one is taken from the pool. `pipelined` (on such a
        connection): the block's statements are sent with the COMMIT, so it may only run
        statements whose results it does not read (PreparedStatement.execute); their errors
        are raised as the block ends."""
        keys = sorted({*lock_keys, *([lock_key] if lock_key else [])}) if write else []
        with translated(table):
            if connection is not None:
                with _explicit_transaction(connection, pipelined=pipelined):
                    self._begin_postgres(connection, deadline, keys)
                    yield connection
                return
            mode = "EXCLUSIVE" if exclusive else "IMMEDIATE" if write else None
            options = {"sqlite_begin": mode} if mode else {}
            with (
                self.engine.connect().execution_options(**options) as pooled,
                pooled.begin(),
            ):
                if self.dialect == "postgresql":
                    self._begin_postgres(pooled, deadline, keys)
                with self._sqlite_deadline(pooled, deadline):
                    yield pooled

    @contextmanager
    def autocommit(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A pooled connection outside any transaction, for reads that need no BEGIN or
        COMMIT round trips (on SQLite the driver is in autocommit mode already); or the one
        the caller holds in autocommit mode (named_locks.holding's), as it is."""
        if connection is not None:
            with translated():
                yield connection
            return
        with translated(), self.engine.connect() as connection:
            if self.dialect == "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    @staticmethod
    def _begin_postgres(connection: Connection, deadline: float | None, keys: list[str]) -> None:
        if deadline is not None:
            ms = max(int(deadline * 1000), 1)
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
        for key in keys:
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})

    @contextmanager
    def _sqlite_deadline(self, connection: Connection, deadline: float | None) -> Iterator[None]:
        if self.dialect != "sqlite" or deadline is None:
            yield
            return
        raw = connection.connection.dbapi_connection
        assert raw is not None
        stop_at = time.monotonic() + deadline
        raw.set_progress_handler(lambda: int(time.monotonic() > stop_at), 1000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)

    def scalar(
        self, sql: str, params: dict[str, Any] | None = None, *, deadline: float | None = None
    ) -> Any:
        with self.transaction(deadline) as connection:
            return connection.execute(text(sql), params or {}).scalar()

    def health(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.scalar("SELECT 1", deadline=5)
        return {
            "backend": self.dialect,
            "ok": True,
            "latencyMs": round((time.perf_counter() - started) * 1000, 2),
            "url": self.engine.url.render_as_string(hide_password=True),
        }

    def dispose(self) -> None:
        self.engine.dispose()
