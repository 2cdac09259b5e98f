"""Every worker on one database places each table alike: the deploy step registers the
placement, a PostgreSQL worker that differs is refused naming the tables, and one SQLite
host follows a changed setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from storage.errors import ConfigurationError
from storage.placement import check_table_placement, register_table_placement
from storage.settings import Settings
from storage.stores import Stores
from tasks.maintenance import apply_migrations
from workers.cli import main


def host(tmp_path: Path, name: str, database: str, backends: dict[str, str]) -> Stores:
    settings = Settings.for_home(tmp_path / name, database_url=database, table_backends=backends)
    return Stores(settings)


def test_the_deploy_steps_placement_is_the_one_workers_must_use(
    tmp_path: Path, postgres_url: str
) -> None:
    everything = host(tmp_path, "a", postgres_url, {"*": "sql"})
    default = host(tmp_path, "b", postgres_url, {})
    try:
        apply_migrations(everything)  # `trainlog migrate upgrade` with the fleet's settings
        check_table_placement(everything)
        with pytest.raises(ConfigurationError) as refused:
            check_table_placement(default)
        assert "activities (csv here, sql there)" in str(refused.value)
        assert refused.value.code == "CONFIGURATION"
        # a migration run without the fleet's setting upgrades, and changes no placement
        assert apply_migrations(default)["placementDiffers"][0].startswith("activities")
        check_table_placement(everything)
        register_table_placement(default)  # the tables were moved on purpose
        check_table_placement(default)
        with pytest.raises(ConfigurationError, match="sql here, csv there"):
            check_table_placement(everything)
    finally:
        everything.close()
        default.close()


def test_one_sqlite_host_follows_a_changed_setting(settings: Settings) -> None:
    first = Stores(settings)
    moved = Stores(settings.with_(table_backends={"goals": "sql"}))
    first.initialize()
    try:
        check_table_placement(first)
        check_table_placement(moved)
        check_table_placement(moved)
    finally:
        first.close()
        moved.close()


def test_register_placement_is_a_command(tmp_path: Path, postgres_url: str) -> None:
    default = host(tmp_path, "b", postgres_url, {})
    default.initialize()
    environment = {
        "TRAINLOG_HOME": str(tmp_path / "ops"),
        "TRAINLOG_DATABASE_URL": postgres_url,
        "TRAINLOG_TABLE_BACKENDS": "*=sql",
    }
    done = CliRunner().invoke(main, ["migrate", "register-placement", "--json"], env=environment)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["placement"]["activities"] == "sql"
    with pytest.raises(ConfigurationError, match="migrate register-placement"):
        check_table_placement(default)
    default.close()
