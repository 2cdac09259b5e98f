"""SQL engine behaviours: deadlines on both databases, unavailability translated, WAL mode."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage.errors import DeadlineExceeded, Unavailable
from storage.repositories.sql import SqlRepository
from storage.settings import Settings
from storage.sql.database import Database
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


def test_unreachable_database_is_unavailable() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(Unavailable) as caught:
        database.scalar("SELECT 1")
    assert caught.value.transient and "unavailable" in str(caught.value)


def test_sqlite_uses_wal(settings: Settings) -> None:
    database = Database(settings.database_url)
    assert database.scalar("PRAGMA journal_mode") == "wal"
    database.dispose()


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
