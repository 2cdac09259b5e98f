"""Named locks held across transactions: on PostgreSQL the connection holding them runs the
caller's transaction (committed or rolled back as a whole), other holders wait or time out
naming the locks, and nothing stays locked or changed on the connection after the block."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage.errors import AlreadyExists, LockTimeout
from storage.settings import Settings
from storage.sql.database import Database
from storage.sql.named_locks import holding
from storage.sql.prepared import PreparedStatement
from storage.sql.schema import sql_table
from storage.stores import Stores
from tests.services import postgres_database


def _marks(stores: Stores) -> dict[str, str]:
    marks = sql_table("coordination_marks")
    with stores.database.transaction() as connection:
        return dict(connection.execute(sa.select(marks.c.name, marks.c.value)).all())


def _insert_mark(connection: sa.Connection, name: str) -> None:
    marks = sql_table("coordination_marks")
    connection.execute(marks.insert().values(name=name, value="v", markedAt=0.0))


def test_a_transaction_on_the_holding_connection_commits_while_the_locks_are_held(
    sql_stores: Stores,
) -> None:
    stores = sql_stores
    database = stores.database
    with holding(database, ["b-lock", "a-lock"], 1) as held:
        assert (held is None) == (database.dialect != "postgresql")
        with database.transaction(write=True, connection=held) as connection:
            _insert_mark(connection, "committed")
        assert _marks(stores) == {"committed": "v"}  # visible to others before the release
        named = "a-lock" if held is not None else "could not lock"  # SQLite: the lock file
        with pytest.raises(LockTimeout, match=named), holding(database, ["a-lock"], 0.2):
            pass
    with holding(database, ["a-lock", "b-lock"], 0.2):  # released
        pass


def test_a_failed_transaction_on_the_holding_connection_writes_nothing(sql_stores: Stores) -> None:
    stores = sql_stores
    database = stores.database
    with holding(database, ["a-lock"], 1) as held:
        with (
            pytest.raises(RuntimeError),
            database.transaction(write=True, connection=held) as connection,
        ):
            _insert_mark(connection, "rolled back")
            raise RuntimeError("the caller failed half way")
        with database.transaction(write=True, connection=held) as connection:
            _insert_mark(connection, "after")  # the connection is usable again
    assert _marks(stores) == {"after": "v"}


def test_the_lock_timeout_bounds_only_the_wait_for_the_locks(settings: Settings) -> None:
    with postgres_database() as url:
        database = Database(url)
        try:
            _hold_and_release(database)
        finally:
            database.dispose()


def _hold_and_release(database: Database) -> None:
    with database.engine.connect() as connection:
        default = connection.exec_driver_sql("SHOW lock_timeout").scalar()
    for _ in range(database.engine.pool.size() + 1):  # every pooled connection has held one
        with holding(database, ["a-lock"], 0.25) as held:
            assert held is not None
            # not inherited by the caller's statements (their row locks wait as usual)
            assert held.exec_driver_sql("SHOW lock_timeout").scalar() == default
            locks = held.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND pid = pg_backend_pid()"
            ).scalar()
            assert locks == 1
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW lock_timeout").scalar() == default
        assert not connection.exec_driver_sql(  # in this database: others may run meanwhile
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).scalar()


def test_sqlite_gives_no_connection(settings: Settings) -> None:
    stores = Stores(settings)
    stores.initialize()
    try:
        with holding(stores.database, ["a-lock"], 1) as held:
            assert held is None
    finally:
        stores.close()


def _prepared_mark_insert(database: Database) -> PreparedStatement:
    return PreparedStatement(sql_table("coordination_marks").insert(), database.engine.dialect)


def test_a_pipelined_transaction_commits_every_statement_or_none(sql_stores: Stores) -> None:
    """Pipelined on PostgreSQL (the statements go with the COMMIT): a duplicate key found
    only then is AlreadyExists, nothing of the block is kept, the connection works on."""
    stores = sql_stores
    database = stores.database
    insert = _prepared_mark_insert(database)
    row = {"value": "v", "markedAt": 0.0, "createdAt": None, "updatedAt": None, "version": 1}
    with holding(database, ["a-lock"], 1) as held:
        with database.transaction(write=True, connection=held, pipelined=True) as connection:
            insert.execute(connection, [{"name": "one", **row}])
            insert.execute(connection, [{"name": "two", **row}, {"name": "three", **row}])
        with (
            pytest.raises(AlreadyExists),
            database.transaction(write=True, connection=held, pipelined=True) as connection,
        ):
            insert.execute(connection, [{"name": "four", **row}])
            insert.execute(connection, [{"name": "one", **row}])  # already there
        with (
            pytest.raises(RuntimeError),
            database.transaction(write=True, connection=held, pipelined=True) as connection,
        ):
            insert.execute(connection, [{"name": "five", **row}])
            raise RuntimeError("the caller failed half way")
        with database.transaction(write=True, connection=held, pipelined=True) as connection:
            insert.execute(connection, [{"name": "six", **row}])
    assert sorted(_marks(stores)) == ["one", "six", "three", "two"]
