"""Build a repository of any backend for a test (the one place tests choose backends)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.csv.storage import CsvStorage
from storage.repositories.base import Repository
from storage.repositories.csv import CsvRepository
from storage.repositories.memory import MemoryRepository
from storage.repositories.sql import SqlRepository
from storage.sql.database import Database
from storage.tables import get_table
from tests.services import postgres_database

BACKENDS = ["memory", "csv", "sqlite", "postgresql"]
SHARED_BACKENDS = ["csv", "sqlite", "postgresql"]  # visible across processes


@contextmanager
def backend_location(backend: str, tmp_path: Path) -> Iterator[str]:
    """A location string another process can open with `open_repository`."""
    if backend == "postgresql":
        with postgres_database() as url:
            yield url
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite'}"
    else:
        yield str(tmp_path / "csv")


def open_repository(
    backend: str, location: str, table: str, lock_timeout: float = 30.0
) -> Repository:
    definition = get_table(table)
    if backend == "memory":
        return MemoryRepository(definition)
    if backend == "csv":
        return CsvRepository(definition, CsvStorage(Path(location), lock_timeout=lock_timeout))
    repo = SqlRepository(definition, Database(location))
    repo.initialize()
    return repo


@contextmanager
def repository_factory(backend: str, tmp_path: Path) -> Iterator[Callable[[str], Repository]]:
    """`make(table)` opens that table on one shared location of `backend`; all are shut down
    at the end."""
    repos: list[Repository] = []
    with backend_location(backend, tmp_path) as location:

        def make(table: str) -> Repository:
            repo = open_repository(backend, location, table)
            repos.append(repo)
            return repo

        yield make
        for repo in repos:
            repo.shutdown()
