"""Alembic owns the SQL schema. Each module (core, sessions, seeds) has its own folder of
revisions and its own base; `heads` is all of them. Runners serialise themselves: PostgreSQL
with an advisory lock, SQLite with an exclusive transaction, so two runners started at once
apply each revision exactly once and both succeed."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from storage.errors import MigrationError, PersistenceError
from storage.options import shown_url
from storage.sql.database import Database
from storage.sql.errors import translated

MODULES = ("core", "sessions", "seeds")
LOCK_KEY = "trainlog:migrations"  # serialises migration runners (see Database.transaction)


def migrations_folder() -> Path:
    return Path(str(resources.files("storage") / "migrations"))


def alembic_config(connection: Connection | None = None) -> Config:
    """A programmatic Alembic config (no alembic.ini): script folder and version folders."""
    quiet_alembic()
    folder = migrations_folder()
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option(
        "version_locations", " ".join(str(folder / "versions" / module) for module in MODULES)
    )
    config.set_main_option("path_separator", "space")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def locked_connection(database: Database) -> Iterator[Connection]:
    """A transaction only one migration runner at a time may hold (advisory lock / EXCLUSIVE)."""
    with database.transaction(write=True, exclusive=True, lock_key=LOCK_KEY) as connection:
        yield connection


def quiet_alembic() -> None:
    """Alembic logs "Context impl SQLiteImpl." and the like at INFO each time a runner looks:
    every worker start would add them to its log."""
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


def current_revisions(database: Database) -> list[str]:
    quiet_alembic()
    with translated(), database.engine.connect() as connection:
        return sorted(MigrationContext.configure(connection).get_current_heads())


def head_revisions() -> list[str]:
    return sorted(ScriptDirectory.from_config(alembic_config()).get_heads())


def upgrade(database: Database, target: str = "heads") -> dict[str, Any]:
    return _run(database, "upgrade", target)


def downgrade(
    database: Database, target: str, *, allow_drop: Callable[[list[str]], bool] | None = None
) -> dict[str, Any]:
    """Downgrade to `target`. When the downgrade would drop tables that hold rows,
    `allow_drop(their names)` is asked first, before anything changes (None: allowed); a
    refusal is a MigrationError and the schema stays as it was."""
    if allow_drop is not None:
        doomed = dropped_with_rows(database, target)
        if doomed and not allow_drop(doomed):
            raise MigrationError(
                f"downgrade to {target!r} would drop {len(doomed)} table(s) holding rows "
                f"({', '.join(doomed)}); nothing was changed"
            )
    return _run(database, "downgrade", target)


def _target(revision: str) -> str:
    """Alembic's names, with `head` meaning every branch's head (each module has a branch, so
    Alembic would call `head` ambiguous)."""
    return "heads" if revision == "head" else revision


class _DryRun(Exception):
    """Raised inside the migration's transaction to roll back what it did."""


def dropped_with_rows(database: Database, target: str) -> list[str]:
    """The tables holding rows that a downgrade to `target` would drop: the downgrade run in
    a transaction that is rolled back (DDL is transactional on PostgreSQL and SQLite)."""
    found: list[str] = []
    try:
        with locked_connection(database) as connection:
            before = set(sa.inspect(connection).get_table_names())
            holding = {
                name
                for name in before
                if connection.execute(sa.text(f'SELECT 1 FROM "{name}" LIMIT 1')).first()
            }
            command.downgrade(alembic_config(connection), _target(target))
            after = set(sa.inspect(connection).get_table_names())
            found = sorted((before - after) & holding)
            raise _DryRun
    except _DryRun:
        return found
    except PersistenceError:
        raise
    except Exception as error:
        raise MigrationError(f"downgrade to {target!r} failed: {error}") from None


def check(database: Database) -> dict[str, Any]:
    """Whether the table definitions and the revisions agree: the database at the heads,
    compared with the tables `storage/tables.py` defines (Alembic's `check`)."""
    try:
        with locked_connection(database) as connection:
            current = _heads(connection)
            if current != head_revisions():
                raise MigrationError(
                    f"the database is at {current or 'base'}, not at the heads "
                    f"{head_revisions()}: run `trainlog migrate upgrade` first"
                )
            config = alembic_config(connection)
            config.stdout = io.StringIO()  # Alembic prints its verdict; ours is the result
            command.check(config)
    except PersistenceError:
        raise
    except Exception as error:
        raise MigrationError(
            f"the table definitions and the revisions disagree: {error} (a revision is "
            "missing: python -m storage.migrations.make_revision MODULE MESSAGE)"
        ) from None
    return {"heads": head_revisions(), "ok": True}


def _run(database: Database, action: str, target: str) -> dict[str, Any]:
    target = _target(target)
    try:
        with locked_connection(database) as connection:
            before = _heads(connection)  # read under the lock: what this runner will change
            getattr(command, action)(alembic_config(connection), target)
            after = _heads(connection)
    except PersistenceError:
        raise
    except Exception as error:  # alembic's CommandError and friends, said for the user
        raise MigrationError(f"{action} to {target!r} failed: {error}") from None
    return {"from": before, "to": after}


def _heads(connection: Connection) -> list[str]:
    return sorted(MigrationContext.configure(connection).get_current_heads())


def create_schema(database: Database) -> None:
    """Bring the SQL schema to head: the one way SQL tables come into being."""
    if current_revisions(database) != head_revisions():
        upgrade(database)


def require_heads(database: Database) -> None:
    """MIGRATION unless the database is at the heads: on PostgreSQL a migration is a deploy
    step, run once, not something the first worker to start happens to do."""
    current, heads = current_revisions(database), head_revisions()
    if current != heads:
        where = shown_url(database.engine.url.render_as_string(hide_password=True))
        raise MigrationError(
            f"the database {where} is at revision {', '.join(current) or 'base (empty)'}; "
            f"this version of trainlog needs {', '.join(heads)}: run `trainlog migrate "
            "upgrade` (compose: the migrate service) before starting workers"
        )


def history() -> list[dict[str, Any]]:
    script = ScriptDirectory.from_config(alembic_config())
    return [
        {
            "revision": rev.revision,
            "down": rev.down_revision,
            "branches": sorted(rev.branch_labels),
            "message": rev.doc,
        }
        for rev in script.walk_revisions()
    ]
