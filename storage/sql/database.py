"""A database: its engine (`sql/engine.py`), transactions with per-call deadlines, and health."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, exc, text
from sqlalchemy.exc import DBAPIError

from storage.options import shown_url
from storage.sql.engine import make_engine
from storage.sql.errors import CONNECTION_FAILURES, translate


@contextmanager
def _explicit_transaction(connection: Connection, *, pipelined: bool = False) -> Iterator[None]:
    """BEGIN ... COMMIT sent as SQL on a connection in autocommit mode (SQLAlchemy's own
    transaction would be a no-op there); ROLLBACK when the block raises. `pipelined`: on
    psycopg, every statement up to COMMIT goes to the server at COMMIT, in one round trip."""
    dbapi = connection.dialect.loaded_dbapi
    raw: Any = connection.connection.dbapi_connection
    batch = pipeline(raw) if pipelined else nullcontext()
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


def pipeline(raw: Any) -> AbstractContextManager[Any]:
    """psycopg's pipeline mode on a DBAPI connection, when its libpq has it (14 and later):
    the statements of the block go to the server, and their results come back, in one
    round trip as the block ends (read them after it). Elsewhere the block runs as it is."""
    if not callable(getattr(raw, "pipeline", None)):
        return nullcontext()
    import psycopg  # an optional dependency: only a psycopg connection gets here

    return raw.pipeline() if psycopg.Pipeline.is_supported() else nullcontext()


class Database:
    """One engine; `transaction()` yields a connection, committed on success."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.suspect_since = 0.0  # time.monotonic() of the last connection failure
        self.engine = make_engine(url, lambda: self.suspect_since)
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
        with self.translated(table):
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
    def translated(self, table: str | None = None) -> Iterator[None]:
        """Errors as PersistenceErrors (`sql/errors.py`); after a connection's failure the
        pool pings each connection once before its next use."""
        try:
            yield
        except exc.SQLAlchemyError as error:
            if isinstance(error, CONNECTION_FAILURES):
                self.suspect_since = time.monotonic()
            raise translate(error, table=table) from None

    @contextmanager
    def autocommit(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A pooled connection outside any transaction, for reads that need no BEGIN or
        COMMIT round trips (on SQLite the driver is in autocommit mode already); or the one
        the caller holds in autocommit mode (named_locks.holding's), as it is."""
        if connection is not None:
            with self.translated():
                yield connection
            return
        with self.translated(), self.engine.connect() as connection:
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
            "url": shown_url(self.engine.url.render_as_string(hide_password=True)),
        }

    def dispose(self) -> None:
        self.engine.dispose()
