"""The open storage of one process: CSV folder, SQL database and a repository per table."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import Any

from storage.coordination import FLUSH_GRACE_SECONDS, Coordination
from storage.csv.storage import CsvStorage
from storage.repositories.base import Repository
from storage.repositories.csv import CsvRepository
from storage.repositories.sql import SqlRepository
from storage.sessions.store import SessionStore
from storage.settings import Settings
from storage.sql.database import Database
from storage.tables import get_table

log = logging.getLogger(__name__)


class Stores:
    """Built from the settings; opens the database lazily; `close()` releases it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.csv = CsvStorage(settings.data_dir, lock_timeout=settings.lock_timeout)
        self._repositories: dict[str, Repository] = {}
        # whether a worker registered the export folder (read at `prepare`): from then on a
        # write into a folder without its identity file is refused (storage/export_folder.py)
        self.export_folder_registered = False

    @cached_property
    def database(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def sessions(self) -> SessionStore:
        return SessionStore(self.database, lock_timeout=self.settings.lock_timeout)

    @cached_property
    def coordination(self) -> Coordination:
        """Pending recomputes, marks and the metrics lock, shared by every worker host. A
        flush job not started FLUSH_GRACE_SECONDS after it was due counts as lost (its worker
        was killed holding it), so the next change schedules another."""
        return Coordination(
            self.database,
            lock_timeout=self.settings.lock_timeout,
            flush_lost_after=self.settings.recompute_delay + FLUSH_GRACE_SECONDS,
            taken_lost_after=self.settings.task_time_limit,
        )

    @cached_property
    def muscle_lookup(self) -> Callable[[str], list[str]]:
        """Exercise name -> target muscle groups from the catalog (imported on first use),
        read again every `catalog_refresh` seconds."""
        from storage.seeds.catalog import CatalogLookup

        return CatalogLookup(self.database, self.settings.catalog_refresh)

    def backend_of(self, name: str) -> str:
        table = get_table(name)
        return self.settings.backend_for(name, table.backend) if table.movable else "sql"

    def repository(self, name: str) -> Repository:
        if name not in self._repositories:
            table = get_table(name)
            repo: Repository
            if self.backend_of(name) == "sql":
                repo = SqlRepository(table, self.database)
            else:
                repo = CsvRepository(table, self.csv)
            self._repositories[name] = repo
        return self._repositories[name]

    def initialize(self) -> None:
        """Create folders and bring the SQL schema to the heads (idempotent): for the tools
        that own the schema (`trainlog migrate`, the demo, tests)."""
        from storage.migrations import create_schema

        self._make_folders()
        create_schema(self.database)
        self._adopt_legacy_state()

    def prepare(self) -> None:
        """Ready for work (a worker, a CLI command): folders, then the schema. The embedded
        SQLite database migrates itself, so `trainlog demo` needs no step; PostgreSQL must be
        at the heads already (a MIGRATION error names the command to run)."""
        from storage.export_folder import MARK
        from storage.migrations import create_schema, require_heads

        self._make_folders()
        if self.database.dialect == "sqlite":
            create_schema(self.database)
        else:
            require_heads(self.database)
        self._adopt_legacy_state()
        self.export_folder_registered = self.coordination.read_mark(MARK) is not None

    def _make_folders(self) -> None:
        for folder in (self.settings.data_dir, self.settings.export_dir, self.settings.import_dir):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:  # the job that needs it reports a clear, retried error
                log.warning("cannot create %s: %s", folder, error.strerror)

    def _adopt_legacy_state(self) -> None:
        from storage.legacy_state import adopt_legacy_state

        adopt_legacy_state(self.coordination, self.settings.data_dir)

    def health(self) -> dict[str, Any]:
        return {"database": self.database.health(), "dataDir": str(self.csv.folder)}

    def close(self) -> None:
        if "database" in self.__dict__:
            self.database.dispose()
