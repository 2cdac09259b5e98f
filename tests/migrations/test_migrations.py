"""Migrations run for real, up and down, on SQLite and PostgreSQL; runners never collide."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import migrations
from storage.settings import Settings
from storage.sql.database import Database
from storage.sql.schema import sql_metadata
from storage.stores import Stores
from storage.tables import TABLES
from tasks.maintenance import apply_migrations


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
