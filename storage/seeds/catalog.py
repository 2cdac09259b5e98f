"""The exercise catalog as a lookup for filling a session's empty muscle groups, read again
once it is older than a set age, so a seed update or a user's edit of the catalog made by any
process reaches every worker without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

from storage.seeds.sync import muscle_groups
from storage.sql.database import Database


class CatalogLookup:
    """Exercise name (any case) -> target muscle groups; `max_age` 0 reads it every time."""

    def __init__(
        self,
        database: Database,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.max_age = max_age
        self.clock = clock
        self._groups: dict[str, list[str]] | None = None
        self._read_at = 0.0

    def __call__(self, name: str) -> list[str]:
        now = self.clock()
        if self._groups is None or now - self._read_at >= self.max_age:
            self._groups, self._read_at = muscle_groups(self.database), now
        return list(self._groups.get(name.strip().lower(), []))
