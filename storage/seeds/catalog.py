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
        self._loose: dict[str, list[str]] = {}  # by exercise_key
        self._read_at = 0.0

    def __call__(self, name: str) -> list[str]:
        now = self.clock()
        if self._groups is None or now - self._read_at >= self.max_age:
            exact = muscle_groups(self.database)
            loose = {exercise_key(n): g for n, g in exact.items()}
            self._groups, self._loose, self._read_at = exact, loose, now
        found = self._groups.get(name.strip().lower())  # an entry of this very name first
        if found is not None:
            return list(found)
        for candidate in _candidates(exercise_key(name)):
            if candidate in self._loose:
                return list(self._loose[candidate])
        return []


# implements people write before an exercise the catalog names without one
IMPLEMENTS = ("barbell", "bb", "dumbbell", "db", "kettlebell", "kb", "cable", "machine",
              "smith machine", "ez bar", "trap bar")  # fmt: skip


def exercise_key(name: str) -> str:
    """A name as people write it variously: any case, hyphens or spaces, with or without
    apostrophes ("Pull-Up", "pull up"; "Farmer's Walk", "Farmers Walk")."""
    cleaned = name.lower().replace("'", "").replace("\u2019", "").replace("-", " ")
    return " ".join(cleaned.split())


def _candidates(key: str) -> list[str]:
    """The name, then without a leading implement ("Barbell Bench Press" is the catalog's
    "Bench Press"), each then as a singular ("Dips")."""
    names = [key]
    for implement in IMPLEMENTS:
        if key.startswith(implement + " "):
            names.append(key.removeprefix(implement + " "))
    return names + [name[:-1] for name in names if name.endswith("s") and len(name) > 3]
