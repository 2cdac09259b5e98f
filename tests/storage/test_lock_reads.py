"""Reads made as named locks are taken and freed (`holding_and_reading`): on PostgreSQL they
share the lock statements' round trips, yet the first sees what the previous holder
committed, the last sees what the block wrote, and a failed block or read changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from storage.errors import LockTimeout
from storage.settings import Settings
from storage.sql.named_locks import holding, holding_and_reading
from storage.sql.prepared import PreparedStatement, Read
from storage.sql.schema import sql_table
from storage.stores import Stores


@pytest.fixture
def pg_stores(settings: Settings, postgres_url: str) -> Iterator[Stores]:
    stores = Stores(settings.with_(database_url=postgres_url))
    stores.initialize()
    yield stores
    stores.close()


def _value_of(stores: Stores, name: str) -> Read:
    marks = sql_table("coordination_marks")
    query = sa.select(marks.c.value).where(marks.c.name == sa.bindparam("name"))
    return Read(PreparedStatement(query, stores.database.engine.dialect), {"name": name})


def _set_mark(stores: Stores, connection: sa.Connection | None, name: str, value: str) -> None:
    marks = sql_table("coordination_marks")
    with stores.database.transaction(write=True, connection=connection) as transaction:
        transaction.execute(marks.delete().where(marks.c.name == name))
        transaction.execute(marks.insert().values(name=name, value=value, markedAt=0.0))


def test_the_first_read_sees_what_the_previous_holder_committed(sql_stores: Stores) -> None:
    """The read goes with the lock statement, but runs after the wait for the lock: a read
    in the lock statement's own snapshot would see the value from before the wait."""
    stores = sql_stores
    _set_mark(stores, None, "counter", "before")
    seen: list[object] = []
    waiting = threading.Event()

    def second_holder() -> None:
        waiting.set()
        with holding_and_reading(
            stores.database, ["a-lock"], 10, first=_value_of(stores, "counter")
        ) as held:
            seen.append(held.first)

    with holding(stores.database, ["a-lock"], 1) as connection:
        thread = threading.Thread(target=second_holder)
        thread.start()
        waiting.wait(5)
        thread.join(0.5)  # it waits for the lock
        assert thread.is_alive() and not seen
        _set_mark(stores, connection, "counter", "after")
    thread.join(10)
    assert seen == [("after",)]


def test_the_last_read_sees_the_block_and_comes_back_after_it(sql_stores: Stores) -> None:
    stores = sql_stores
    with holding_and_reading(
        stores.database,
        ["a-lock"],
        1,
        first=_value_of(stores, "written"),
        last=_value_of(stores, "written"),
    ) as held:
        assert held.first is None  # no such row yet
        _set_mark(stores, held.connection, "written", "by the block")
        assert held.last is None  # not read yet
    assert held.last == ("by the block",)
    with holding(stores.database, ["a-lock"], 0.2):  # freed
        pass


def test_a_block_that_fails_skips_the_last_read_and_frees_the_locks(sql_stores: Stores) -> None:
    stores = sql_stores
    _set_mark(stores, None, "kept", "v")
    with (
        pytest.raises(RuntimeError),
        holding_and_reading(stores.database, ["a-lock"], 1, last=_value_of(stores, "kept")) as held,
    ):
        raise RuntimeError("the caller failed half way")
    assert held.last is None
    with holding(stores.database, ["a-lock"], 0.2):
        pass


def test_a_last_read_that_fails_leaves_none_and_frees_the_locks(sql_stores: Stores) -> None:
    """The caller reads again (Coordination.mark_pending does): the block's work stands, and
    on PostgreSQL the connection goes back to the pool rather than being closed."""
    stores = sql_stores
    broken = PreparedStatement(
        sa.select(sa.literal_column("no_such_column")).select_from(sql_table("coordination_marks")),
        stores.database.engine.dialect,
    )
    with holding_and_reading(stores.database, ["a-lock"], 1, last=Read(broken, {})) as held:
        _set_mark(stores, held.connection, "kept", "v")
        server = _backend(held.connection)
    assert held.last is None
    with holding_and_reading(
        stores.database, ["a-lock"], 0.2, first=_value_of(stores, "kept")
    ) as again:
        assert again.first == ("v",)
        assert _backend(again.connection) == server  # the same connection, kept


def _backend(connection: sa.Connection | None) -> int | None:
    if connection is None:
        return None
    return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_lock_timeout_with_a_first_read_names_the_lock_and_keeps_none(
    sql_stores: Stores,
) -> None:
    """The other lock, taken before the wait timed out, is freed at once."""
    stores = sql_stores
    with holding(stores.database, ["b-lock"], 1):
        named = "b-lock" if stores.database.dialect == "postgresql" else "could not lock"
        with (
            pytest.raises(LockTimeout, match=named),
            holding_and_reading(
                stores.database, ["a-lock", "b-lock"], 0.2, first=_value_of(stores, "any")
            ),
        ):
            pass
        with holding(stores.database, ["a-lock"], 0.2):  # not left behind
            pass
    with holding_and_reading(  # nothing left locked, the connection works on
        stores.database, ["a-lock", "b-lock"], 0.2, first=_value_of(stores, "any")
    ) as held:
        assert held.first is None


def test_a_first_read_stuck_behind_a_table_lock_says_so(pg_stores: Stores) -> None:
    """The lock timeout bounds the pipelined read too: a schema change holding the table
    fails the read after the timeout, named as such, and the locks are freed."""
    stores = pg_stores
    with stores.database.engine.connect() as other:
        other.exec_driver_sql("LOCK TABLE coordination_marks IN ACCESS EXCLUSIVE MODE")
        with (
            pytest.raises(LockTimeout, match=r"a read waited over 0\.2s for a table lock"),
            holding_and_reading(stores.database, ["a-lock"], 0.2, first=_value_of(stores, "any")),
        ):
            pass
        other.rollback()
    with holding(stores.database, ["a-lock"], 0.2):
        pass


def test_the_first_read_is_fresh_on_a_repeatable_read_database(pg_stores: Stores) -> None:
    """Under REPEATABLE READ the pipelined read would share the lock statement's snapshot,
    from before the wait: the engine keeps its sessions at READ COMMITTED."""
    stores = pg_stores
    name = stores.database.engine.url.database
    with stores.database.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
        )
    stores.database.engine.dispose()  # new sessions take the database's new default
    test_the_first_read_sees_what_the_previous_holder_committed(stores)
