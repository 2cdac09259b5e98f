"""Migrations run for real, up and down, on SQLite and PostgreSQL; runners never collide."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import migrations
from storage.errors import MigrationError
from storage.settings import Settings
from storage.sql.database import Database
from storage.sql.schema import sql_metadata
from storage.stores import Stores
from storage.tables import TABLES
from tasks import sessions
from tasks.maintenance import apply_migrations
from tests.factories import session_payload


def tables_in(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(sql_settings: Settings) -> None:
    database = Database(sql_settings.database_url)
    assert migrations.current_revisions(database) == []
    result = migrations.upgrade(database)
    assert result == {"from": [], "to": migrations.head_revisions()}
    assert len(migrations.head_revisions()) == len(migrations.MODULES)
    assert tables_in(database) == set(TABLES)
    migrations.downgrade(database, "base")
    assert tables_in(database) == set() and migrations.current_revisions(database) == []
    migrations.upgrade(database)
    assert tables_in(database) == set(TABLES)
    migrations.downgrade(database, "sessions@base")
    assert "training_sessions" not in tables_in(database) and "goals" in tables_in(database)
    migrations.upgrade(database)
    database.dispose()


def test_definitions_and_migrations_agree(sql_settings: Settings) -> None:
    database = Database(sql_settings.database_url)
    migrations.upgrade(database)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, sql_metadata())
    database.dispose()
    assert diff == [], f"table definitions changed without a revision: {diff}"


def test_history_lists_every_module() -> None:
    branches = {label for rev in migrations.history() for label in rev["branches"]}
    assert branches == set(migrations.MODULES)


def run_apply(url: str, home: str, queue) -> None:
    stores = Stores(Settings.for_home(home, database_url=url))
    queue.put(apply_migrations(stores)["sql"])
    stores.close()


def test_two_runners_at_once_apply_each_revision_once(
    sql_settings: Settings, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    runners = [
        context.Process(
            target=run_apply, args=(sql_settings.database_url, str(tmp_path / f"h{n}"), results)
        )
        for n in range(2)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(120)
        assert runner.exitcode == 0
    outcomes = sorted((results.get(timeout=5) for _ in runners), key=lambda r: len(r["from"]))
    heads = migrations.head_revisions()
    assert outcomes[0] == {"from": [], "to": heads}  # one runner applied everything
    assert outcomes[1] == {"from": heads, "to": heads}  # the other found nothing to do
    database = Database(sql_settings.database_url)
    assert migrations.current_revisions(database) == heads
    database.dispose()


def test_apply_migrations_upgrades_csv_headers(settings: Settings) -> None:
    stores = Stores(settings)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "goals.csv").write_text("goalId,athleteId,title,legacy\ng1,a,t,old\n")
    result = apply_migrations(stores)
    assert "status" in result["csv"]["goals"] and "legacy" not in result["csv"]["goals"]
    assert stores.repository("goals").get("g1")["title"] == "t"
    assert apply_migrations(stores)["csv"] == {}
    stores.close()


def _cli(home: Path, *args: str, stdin: str | None = None) -> Any:
    from click.testing import CliRunner

    from workers.cli import main

    return CliRunner().invoke(main, list(args), env={"TRAINLOG_HOME": str(home)}, input=stdin)


def test_migrate_takes_revisions_as_alembic_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _cli(home, "migrate", "upgrade", "head").exit_code == 0  # head: every branch's
    heads = json.loads(_cli(home, "migrate", "heads", "--json").output)
    assert sorted(heads) == migrations.head_revisions()
    assert json.loads(_cli(home, "migrate", "check", "--json").output)["ok"] is True
    assert _cli(home, "migrate", "downgrade", "sessions@-1").exit_code == 0  # a column only
    current = json.loads(_cli(home, "migrate", "current", "--json").output)["current"]
    assert len(current) == len(heads) and current != heads
    assert _cli(home, "migrate", "upgrade", "sessions@+1").exit_code == 0
    missing = _cli(home, "migrate", "downgrade")
    assert missing.exit_code == 2 and "Missing argument 'REVISION'" in missing.output


def test_a_downgrade_that_drops_tables_holding_rows_needs_a_yes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stores = Stores(Settings.for_home(home))
    stores.initialize()
    sessions.save_session(stores, session_payload(1))
    stores.close()
    refused = _cli(home, "migrate", "downgrade", "base")  # no terminal: nothing to ask
    assert refused.exit_code == 1, refused.output
    assert "would drop" in refused.output and "training_sessions" in refused.output
    assert "pass --yes" in refused.output
    database = Database(Settings.for_home(home).database_url)
    assert "training_sessions" in tables_in(database)  # nothing changed
    declined = _cli(home, "migrate", "downgrade", "sessions@base", stdin="n\n")
    assert declined.exit_code == 1 and "training_sessions" in tables_in(database)
    done = _cli(home, "migrate", "downgrade", "base", "--yes", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["to"] == [] and "training_sessions" not in tables_in(database)
    database.dispose()


def test_check_fails_when_the_definitions_and_the_revisions_disagree(
    sql_settings: Settings,
) -> None:
    database = Database(sql_settings.database_url)
    migrations.upgrade(database)
    assert migrations.check(database)["ok"]
    with database.transaction(write=True) as connection:
        connection.exec_driver_sql('DROP INDEX "ix_training_sessions_activityVersion"')
    with pytest.raises(MigrationError, match="disagree"):
        migrations.check(database)
    database.dispose()


def test_alembics_own_command_line_runs_the_same_revisions(tmp_path: Path) -> None:
    """`alembic` from the repository's root (alembic.ini), on the database the settings name."""
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**os.environ, "TRAINLOG_HOME": str(tmp_path / "home")}

    def alembic(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(root / "alembic.ini"), *args],
            cwd=root, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    alembic("upgrade", "heads")
    current = json.loads(_cli(tmp_path / "home", "migrate", "current", "--json").output)
    assert sorted(current["current"]) == migrations.head_revisions()
    assert all(revision in alembic("current") for revision in migrations.head_revisions())
    alembic("downgrade", "seeds@base")
    assert "e841f3f7852e" not in alembic("current")
