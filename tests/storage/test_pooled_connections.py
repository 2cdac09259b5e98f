"""Pooled PostgreSQL connections the server dropped: pinged and replaced after sitting idle,
and a recently used one fails its job UNAVAILABLE (transient) once, the next use gets a new one."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from storage.errors import Unavailable
from storage.sql import database as database_module
from storage.sql.database import Database
from tests.services import PG_ADMIN_URL


def backend_pid(database: Database) -> int:
    with database.transaction() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def terminate(pid: int) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_unseen(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_IDLE_AFTER_S", 0.0)  # every checkout pings
    database = Database(postgres_url)
    try:
        first = backend_pid(database)
        terminate(first)
        assert database.scalar("SELECT 41 + 1") == 42  # no error: the ping found it gone
        assert backend_pid(database) != first
    finally:
        database.dispose()


def test_a_connection_used_just_now_is_not_pinged_and_a_drop_costs_one_transient_error(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "PING_IDLE_AFTER_S", 3600.0)  # never pings
    database = Database(postgres_url)
    try:
        first = backend_pid(database)
        terminate(first)
        with pytest.raises(Unavailable) as caught:
            database.scalar("SELECT 1")
        assert caught.value.transient
        assert database.scalar("SELECT 41 + 1") == 42  # the pool let the dead one go
        assert backend_pid(database) != first
    finally:
        database.dispose()


def test_only_a_connection_that_sat_idle_is_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url)
    pings: list[object] = []
    ping = database.engine.dialect.do_ping

    def counted(raw: Any) -> bool:
        pings.append(raw)
        return bool(ping(raw))

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted)
    try:
        for _ in range(20):  # back to back: no ping round trip
            database.scalar("SELECT 1")
        assert pings == []
        monkeypatch.setattr(database_module, "PING_IDLE_AFTER_S", 0.0)
        for _ in range(3):
            database.scalar("SELECT 1")
        assert len(pings) == 3
    finally:
        database.dispose()
