"""Where an upsert asks metrics to recompute from: the changed rows and the rows they replaced,
on every backend the activities table can live in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from storage.errors import ValidationError
from storage.settings import Settings
from storage.stores import Stores
from tasks.metrics import recompute
from tasks.rows import recompute_dates, upsert_rows
from tests.factories import activity


@pytest.fixture(params=["csv", "sql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    settings = Settings.for_home(tmp_path / "home", lock_timeout=2.0)
    if request.param == "sql":
        settings = settings.with_(table_backends={"activities": "sql"})
    opened = Stores(settings)
    opened.initialize()
    yield opened
    opened.close()


def test_new_activity_recomputes_from_the_day_before(stores: Stores) -> None:
    result = upsert_rows(stores, "activities", [activity(1, day="2026-03-10")])
    assert result["recomputeFrom"] == {"athlete-1": "2026-03-09"}


def test_activity_moved_later_recomputes_from_its_old_day(stores: Stores) -> None:
    upsert_rows(stores, "activities", [activity(1, day="2026-03-03")])
    moved = upsert_rows(stores, "activities", [activity(1, day="2026-03-20")])
    assert moved["recomputeFrom"] == {"athlete-1": "2026-03-02"}


def test_activity_moved_to_another_athlete_recomputes_both(stores: Stores) -> None:
    upsert_rows(stores, "activities", [activity(1, day="2026-03-03")])
    moved = upsert_rows(
        stores, "activities", [activity(1, day="2026-03-05") | {"athleteId": "athlete-2"}]
    )
    assert moved["recomputeFrom"] == {"athlete-1": "2026-03-02", "athlete-2": "2026-03-04"}


def test_unchanged_activity_recomputes_nothing(stores: Stores) -> None:
    upsert_rows(stores, "activities", [activity(1, day="2026-03-03")])
    again = upsert_rows(stores, "activities", [activity(1, day="2026-03-03")])
    assert again["recomputeFrom"] == {}


def test_dates_as_text_dates_or_datetimes_agree() -> None:
    text = pd.DataFrame({"athleteId": ["a"], "startTime": ["2026-03-03T05:00:00Z"]})
    typed = pd.DataFrame({"athleteId": ["a"], "startTime": [datetime(2026, 3, 3, 5, tzinfo=UTC)]})
    assert recompute_dates("activities", text) == recompute_dates("activities", typed)
    thresholds = pd.DataFrame({"athleteId": ["a"], "validFrom": [date(2026, 3, 3)]})
    assert recompute_dates("thresholds", thresholds) == {"a": "2026-03-02"}


def test_row_without_a_day_recomputes_the_athlete_from_the_start() -> None:
    rows = pd.DataFrame({"athleteId": ["a", "a"], "validFrom": ["2026-03-03", None]})
    assert recompute_dates("thresholds", rows) == {"a": date.min.isoformat()}


@pytest.mark.parametrize("table", ["training_sessions", "session_sets", "task_failures"])
def test_tables_with_their_own_job_refuse_upsert_rows(stores: Stores, table: str) -> None:
    with pytest.raises(ValidationError, match="not by upsert_rows"):
        upsert_rows(stores, table, [{"sessionId": "x"}])


def test_athletes_without_activities_recompute_to_nothing_alone_and_among_others(
    stores: Stores,
) -> None:
    """pandas 3 refused to compare an empty load frame's dates (TypeError)."""
    assert recompute.recompute_daily(stores, {"nobody": None}) == {
        "nobody": {"from": None, "days": 0}
    }
    assert recompute.recompute_weekly(stores, {"nobody": date(2026, 3, 1)})["nobody"]["weeks"] == 0
    upsert_rows(stores, "activities", [activity(1, day="2026-03-10")])
    both = recompute.recompute_many(stores, {"nobody": None, "athlete-1": None})
    assert both["athletes"] == 2
    daily = stores.repository("daily_metrics").read_frame()
    assert set(daily["athleteId"]) == {"athlete-1"} and len(daily) == 1
