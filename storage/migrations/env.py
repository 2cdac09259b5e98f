"""Alembic environment: runs on the connection the runner passes (see storage.migrations)."""

from __future__ import annotations

from typing import Any

from alembic import context

from storage.sql.schema import sql_metadata
from storage.tables import TABLES

config = context.config
module = config.attributes.get("module")  # set when generating one module's revision


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    if type_ != "table" or module is None:
        return True
    table = TABLES.get(str(name))
    return table is not None and table.module == module


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # storage.migrations passes its locked connection
        run_on(connection)
        return
    # Alembic's own command line (`alembic -c alembic.ini ...`): the database the TRAINLOG_*
    # settings name, locked like any other runner
    from storage.migrations import locked_connection
    from storage.settings import load_settings
    from storage.sql.database import Database

    database = Database(load_settings().database_url)
    try:
        with locked_connection(database) as locked:
            run_on(locked)
    finally:
        database.dispose()


def run_on(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=sql_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
