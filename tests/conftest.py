from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.settings import Settings
from storage.stores import Stores
from tests.services import postgres_database, redis_database

SQL_BACKENDS = ["sqlite", "postgresql"]


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


@pytest.fixture
def stores(settings: Settings) -> Iterator[Stores]:
    """Storage on the embedded default, schema at head."""
    stores = Stores(settings)
    stores.initialize()
    yield stores
    stores.close()
