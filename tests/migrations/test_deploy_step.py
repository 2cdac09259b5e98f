"""On PostgreSQL a migration is a deploy step: workers and commands refuse an outdated
schema with a MIGRATION error naming the command; the embedded SQLite migrates itself."""

from __future__ import annotations

import pytest

from storage import migrations
from storage.errors import MigrationError, Unavailable
from storage.settings import Settings
from storage.stores import Stores
from workers.process import WorkerProcess


def test_the_embedded_database_migrates_itself(settings: Settings) -> None:
    stores = Stores(settings)
    try:
        stores.prepare()
        assert migrations.current_revisions(stores.database) == migrations.head_revisions()
    finally:
        stores.close()


def test_postgresql_below_the_heads_is_refused_and_left_alone(
    settings: Settings, postgres_url: str
) -> None:
    stores = Stores(settings.with_(database_url=postgres_url))
    try:
        with pytest.raises(MigrationError, match=r"base \(empty\).*trainlog migrate upgrade"):
            stores.prepare()
        assert migrations.current_revisions(stores.database) == []  # nothing was applied
        one_branch_only = migrations.history()[-1]["revision"]
        migrations.upgrade(stores.database, one_branch_only)  # behind the heads
        with pytest.raises(MigrationError, match="is at revision"):
            stores.prepare()
        migrations.upgrade(stores.database)
        stores.prepare()  # at the heads: ready
    finally:
        stores.close()


def test_a_worker_on_an_outdated_postgresql_schema_does_not_start(
    settings: Settings, postgres_url: str
) -> None:
    settings = settings.with_(database_url=postgres_url)
    worker = WorkerProcess(settings, name="outdated")
    with pytest.raises(Unavailable, match="worker exited with 3"):
        worker.start(timeout=60)
    log = worker.log_path.read_text()
    assert "MIGRATION:" in log and "run `trainlog migrate upgrade`" in log
