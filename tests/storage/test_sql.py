"""SQL engine behaviours: deadlines on both databases, unavailability translated, WAL mode."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from storage.errors import AlreadyExists, DeadlineExceeded, ErrorCode, PersistenceError, Unavailable
from storage.repositories.sql import SqlRepository
from storage.settings import Settings
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.stores import Stores
from storage.tables import get_table

SLOW_QUERY = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
    "SELECT count(*) FROM n",  # never ends on its own
    "postgresql": "SELECT pg_sleep(10)",
}


def test_deadline_cuts_off_a_slow_query(sql_settings: Settings) -> None:
    database = Database(sql_settings.database_url)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        database.scalar(SLOW_QUERY[database.dialect], deadline=0.3)
    assert time.monotonic() - started < 3
    assert caught.value.transient
    assert database.scalar("SELECT 41 + 1", deadline=1) == 42  # the connection still works
    database.dispose()


def test_repository_call_with_deadline(sql_settings: Settings) -> None:
    database = Database(sql_settings.database_url)
    repo = SqlRepository(get_table("goals"), database)
    repo.initialize()
    repo.upsert({"goalId": "g", "athleteId": "a", "title": "t"}, deadline=5)
    assert repo.get("g", deadline=5) is not None
    assert repo.list({"athleteId": "a"}, deadline=5).rows[0]["goalId"] == "g"
    database.dispose()


def test_only_a_duplicate_key_is_already_exists(sql_stores: Stores) -> None:
    """A duplicate key is ALREADY_EXISTS; a NOT NULL violation is INTERNAL, a write of ours
    the operator must hear about, never reported as if the row were already there."""
    database, marks = sql_stores.database, sql_table("coordination_marks")
    row = {"name": "a-mark", "value": "v", "markedAt": 1.0, "version": 1}
    with database.transaction(write=True, table="coordination_marks") as connection:
        connection.execute(marks.insert(), row)
    with (
        pytest.raises(AlreadyExists) as duplicate,
        database.transaction(write=True, table="coordination_marks") as connection,
    ):
        connection.execute(marks.insert(), row)
    assert duplicate.value.table == "coordination_marks"
    with (
        pytest.raises(PersistenceError) as missing,
        database.transaction(write=True, table="coordination_marks") as connection,
    ):
        connection.execute(marks.insert(), {**row, "name": "b-mark", "markedAt": None})
    assert missing.value.code is ErrorCode.INTERNAL, missing.value
    assert "broke a constraint" in missing.value.message
    assert "markedat" in missing.value.message  # the column, as the database names it


def test_unreachable_database_is_unavailable() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(Unavailable) as caught:
        database.scalar("SELECT 1")
    assert caught.value.transient and "unavailable" in str(caught.value)


def test_sqlite_uses_wal(settings: Settings) -> None:
    database = Database(settings.database_url)
    assert database.scalar("PRAGMA journal_mode") == "wal"
    database.dispose()


def open_and_write(url: str, start: Any, results: Any) -> None:
    database = Database(url)  # the file is opened by the first transaction, after the wait
    start.wait()
    try:
        with database.transaction(write=True) as connection:
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        database.dispose()
        results.put("ok")
    except Exception as error:
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_new_sqlite_file_at_once_all_get_in(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once, busy handler or not, while another process
    does the same (a third of such opens here before the retry)."""
    context = multiprocessing.get_context("fork")
    outcomes = []
    for attempt in range(20):
        url = f"sqlite:///{tmp_path}/new-{attempt}.sqlite"
        start, results = context.Barrier(3), context.Queue()
        processes = [
            context.Process(target=open_and_write, args=(url, start, results)) for _ in range(3)
        ]
        for process in processes:
            process.start()
        outcomes += [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(10)
    assert outcomes == ["ok"] * 60


def test_a_replaced_sqlite_file_is_reopened_not_written_behind_its_back(
    settings: Settings,
) -> None:
    """Deleting the database and making it again (a reset) while a process holds pooled
    connections: its next transaction reads and writes the new file, not the deleted one."""
    database = Database(settings.database_url)
    goals = SqlRepository(get_table("goals"), database)
    goals.initialize()
    goals.upsert({"goalId": "before", "athleteId": "a", "title": "t"})
    path = Path(database.engine.url.database or "")
    for leftover in (path, *path.parent.glob(f"{path.name}-*")):
        leftover.unlink()
    remade = Database(settings.database_url)
    SqlRepository(get_table("goals"), remade).initialize()
    remade.dispose()
    assert goals.get("before") is None  # the deleted file's row is gone, as the reset meant
    goals.upsert({"goalId": "after", "athleteId": "a", "title": "t"})
    database.dispose()
    reader = Database(settings.database_url)
    assert SqlRepository(get_table("goals"), reader).get("after") is not None
    reader.dispose()
