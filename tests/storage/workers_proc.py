"""Child-process bodies for the concurrency and crash tests (top-level so they can be spawned)."""

from __future__ import annotations

import sys
import time

from storage.errors import Conflict
from tests.storage.repos import open_repository


def upsert_distinct(backend: str, location: str, worker: int, count: int) -> None:
    repo = open_repository(backend, location, "goals")
    for i in range(count):
        repo.upsert({"goalId": f"w{worker}-{i:04d}", "athleteId": "a", "title": "t"})
    repo.shutdown()


def increment_counter(backend: str, location: str, times: int) -> None:
    """Optimistic increments: read, write with the version read, retry on CONFLICT."""
    repo = open_repository(backend, location, "goals")
    done = 0
    while done < times:
        row = repo.get("counter")
        assert row is not None
        try:
            repo.update(
                "counter", {"targetValue": row["targetValue"] + 1, "version": row["version"]}
            )
            done += 1
        except Conflict:
            time.sleep(0.001)
    repo.shutdown()


def upsert_forever(location: str, progress_path: str, table: str = "goals") -> None:
    """Upsert rows one by one, appending each acknowledged id to `progress_path` after return.
    On activities a new key is appended to its month, so kills land mid-append too."""
    repo = open_repository("csv", location, table)
    with open(progress_path, "a", buffering=1) as progress:
        i = 0
        while True:
            row_id = f"{time.time_ns()}-{i}"
            if table == "activities":
                repo.upsert(
                    {
                        "activityId": row_id,
                        "athleteId": "a",
                        "startTime": f"2026-0{1 + i % 3}-0{1 + i % 9}T07:00:00Z",
                        "sport": "run",
                        "durationSec": float(60 + i % 50),
                        "name": "x" * (1 + i % 50),
                    }
                )
            else:
                repo.upsert({"goalId": row_id, "athleteId": "a", "title": "x" * (1 + i % 50)})
            progress.write(row_id + "\n")
            i += 1


if __name__ == "__main__":
    upsert_forever(*sys.argv[1:])
