"""What a rollup asks a table before it reads any rows: each athlete's earliest day, over all
rows or those changed after a stamp, the same on every backend (SQL answers with one GROUP BY,
never reading the rows)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.repositories.frames import datetime_to_text
from tests.factories import activity
from tests.storage.repos import BACKENDS, repository_factory


@pytest.fixture(params=BACKENDS)
def open_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    with repository_factory(request.param, tmp_path) as make:
        yield make


def test_each_athletes_earliest_utc_day_over_all_rows_or_the_changed_ones(open_table) -> None:
    repo = open_table("activities")
    repo.upsert_many(
        [
            activity(1, "a", "2026-03-05"),
            activity(2, "a", "2026-03-02", startTime="2026-03-02T01:00:00+05:00"),  # 1 March UTC
            activity(3, "b", "2026-04-10"),
        ]
    )
    assert repo.earliest_by_athlete("startTime") == {"a": "2026-03-01", "b": "2026-04-10"}
    time.sleep(1.2)  # past the second of slack the SQL bound allows
    stamp = datetime_to_text(datetime.now(UTC))
    assert repo.earliest_by_athlete("startTime", changed_after=stamp) == {}
    repo.upsert_many([activity(1, "a", "2026-03-07"), activity(4, "c", "2026-05-01")])
    changed = repo.earliest_by_athlete("startTime", changed_after=stamp)
    assert changed == {"a": "2026-03-07", "c": "2026-05-01"}


def test_a_date_column_and_an_empty_table(open_table) -> None:
    repo = open_table("planned_sessions")
    assert repo.earliest_by_athlete("date") == {}
