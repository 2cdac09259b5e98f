"""Pooled PostgreSQL connections the server dropped: pinged and replaced after sitting idle,
and a recently used one fails its job UNAVAILABLE (transient) once, the next use gets a new one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from storage.errors import Unavailable
from storage.sql import engine as engine_module
from storage.sql.bulk_write import run_statement
from storage.sql.database import Database
from storage.sql.named_locks import holding
from storage.sql.prepared import PreparedStatement
from tests.services import PG_ADMIN_URL


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def backend_pid(database: Database) -> int:
    with database.transaction() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def terminate(database: Database, pid: int | None = None) -> None:
    """End one server process of the database, or (no pid) every one but the admin's."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                " AND pid <> pg_backend_pid() AND (CAST(:p AS integer) IS NULL OR pid = :p)"
            ),
            {"d": sa.engine.make_url(database.url).database, "p": pid},
        )
    admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_unseen(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE_AFTER_S", 0.0)  # every checkout pings
    first = backend_pid(database)
    terminate(database, first)
    assert database.scalar("SELECT 41 + 1") == 42  # no error: the ping found it gone
    assert backend_pid(database) != first


def test_a_connection_used_just_now_is_not_pinged_and_a_drop_costs_one_transient_error(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_IDLE_AFTER_S", 3600.0)  # never pings
    first = backend_pid(database)
    terminate(database, first)
    with pytest.raises(Unavailable) as caught:
        database.scalar("SELECT 1")
    assert caught.value.transient
    assert database.scalar("SELECT 41 + 1") == 42  # the pool let the dead one go
    assert backend_pid(database) != first


def test_only_a_connection_that_sat_idle_is_pinged(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    ping = database.engine.dialect.do_ping

    def counted(raw: Any) -> bool:
        pings.append(raw)
        return bool(ping(raw))

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted)
    for _ in range(20):  # back to back: no ping round trip
        database.scalar("SELECT 1")
    assert pings == []
    monkeypatch.setattr(engine_module, "PING_IDLE_AFTER_S", 0.0)
    for _ in range(3):
        database.scalar("SELECT 1")
    assert len(pings) == 3


def test_after_one_connection_failed_the_others_are_pinged_before_use(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server restart kills every pooled connection: one job learns it (UNAVAILABLE), and
    the pool checks each other connection once instead of failing one job per connection."""
    monkeypatch.setattr(engine_module, "PING_IDLE_AFTER_S", 3600.0)  # idle time never pings
    with database.engine.connect() as a, database.engine.connect() as b:  # two pooled
        a.exec_driver_sql("SELECT 1")
        b.exec_driver_sql("SELECT 1")
    terminate(database)
    # the named locks run on the DBAPI cursor, where SQLAlchemy does not see the failure
    with pytest.raises(Unavailable), holding(database, ["a-lock"], 1):
        pass
    for _ in range(4):  # every other dead connection is found by its ping
        with holding(database, ["a-lock"], 1) as held:
            assert held is not None
            assert held.exec_driver_sql("SELECT 41 + 1").scalar() == 42


@pytest.mark.parametrize("pipelined", [False, True])
def test_a_connection_dropped_while_it_holds_the_locks_fails_its_job_transient(
    database: Database, pipelined: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLAlchemy invalidates the connection when the caller's statement fails on it: freeing
    the locks must not turn that into a permanent error (the job would not be retried). The
    one failure is one error: psycopg's note that the pipeline could not end is not logged."""
    with pytest.raises(Unavailable), holding(database, ["a-lock"], 1) as held:
        assert held is not None
        terminate(database, int(held.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
        with database.transaction(write=True, connection=held, pipelined=pipelined) as connection:
            connection.exec_driver_sql("SELECT 1")
    with holding(database, ["a-lock"], 1) as held:  # freed, and the pool works on
        assert held is not None
        assert held.exec_driver_sql("SELECT 41 + 1").scalar() == 42
    noted = [r for r in caplog.records if r.name == "psycopg" and r.levelno >= logging.WARNING]
    assert not noted, caplog.text


TOKEN = "tok-4f1c9e-never-logged"


def chained(error: BaseException | None) -> Iterator[BaseException]:
    """The error and every error it was raised from or while handling."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


@pytest.mark.parametrize("runner", ["prepared statement", "bulk statement", "sqlalchemy"])
def test_a_statement_whose_connection_is_lost_fails_once_and_never_shows_its_values(
    database: Database, runner: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the connection mid-statement. On the DBAPI cursor as through
    SQLAlchemy: the job's error is UNAVAILABLE and says why; the lost connection is dropped,
    not rolled back (which fails, and replaced the error or logged it again at ERROR); the
    statement's values (a token, say) are in no error of the chain and no log record."""
    sleep_and_token = sa.select(
        sa.literal_column("pg_sleep(2)"), sa.bindparam("token", type_=sa.String)
    )
    with pytest.raises(Unavailable) as raised, database.autocommit() as connection:
        pid = int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        threading.Timer(0.3, terminate, (database, pid)).start()
        if runner == "prepared statement":
            PreparedStatement(sleep_and_token, connection.dialect).first(
                connection, {"token": TOKEN}
            )
        elif runner == "bulk statement":
            with run_statement(connection, "SELECT pg_sleep(2), %s::text") as cursor:
                cursor.execute("SELECT pg_sleep(2), %s::text", (TOKEN,))
        else:
            connection.execute(sleep_and_token, {"token": TOKEN})
    assert "administrator command" in str(raised.value)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert TOKEN not in caplog.text
    assert not [e for e in chained(raised.value) if TOKEN in str(e)]
    assert database.scalar("SELECT 41 + 1") == 42  # the pool works on
