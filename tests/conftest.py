from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.settings import Settings
from storage.stores import Stores
from tests.services import postgres_database, redis_database

SQL_BACKENDS = ["sqlite", "postgresql"]
WORKER_TESTS = ("pipeline", "clients", "test_rollup_worker.py")  # folders and modules under tests/


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs, so `-m "not worker"` (or "not postgres", "not redis") selects
    a fast suite: worker = starts a real Celery worker; postgres/redis = uses that server."""
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts
        if any(part in WORKER_TESTS for part in parts):
            item.add_marker(pytest.mark.worker)
        fixtures = set(getattr(item, "fixturenames", ()))
        params = set(map(str, getattr(getattr(item, "callspec", None), "params", {}).values()))
        if "postgres_url" in fixtures or "postgresql" in params:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in fixtures or "redis" in params or "redis_pipeline" in fixtures:
            item.add_marker(pytest.mark.redis)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded defaults under a fresh folder: SQLite, CSV and JSON folders, no server."""
    return Settings.for_home(tmp_path / "home", lock_timeout=2.0)


@pytest.fixture(params=SQL_BACKENDS)
def sql_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield settings
    else:
        with postgres_database() as url:
            yield settings.with_(database_url=url)


def _initialized(settings: Settings) -> Iterator[Stores]:
    stores = Stores(settings)
    stores.initialize()
    yield stores
    stores.close()


@pytest.fixture
def sql_stores(sql_settings: Settings) -> Iterator[Stores]:
    """Storage on SQLite and on PostgreSQL, schema at head."""
    yield from _initialized(sql_settings)


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    """Storage on the embedded default, schema at head."""
    yield from _initialized(settings)
