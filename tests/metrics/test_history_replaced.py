"""A recompute that starts an athlete's history again (its first activity moved later, or no
activity at all) replaces every old row of it: what is left equals a full recompute of the
same data in an empty store, on CSV and with every table on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from storage.settings import Settings
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute
from tests.metrics.test_sql_backends import ATHLETES, outputs, seeded


@pytest.fixture(params=["csv", "sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    settings = Settings.for_home(tmp_path / "home")
    if request.param != "csv":
        settings = Settings.for_home(tmp_path / "home", table_backends={"*": "sql"})
    if request.param == "postgresql":
        settings = settings.with_(database_url=request.getfixturevalue("postgres_url"))
    opened = seeded(settings)
    yield opened
    opened.close()


def _earliest(stores: Stores, athlete: str) -> dict:
    """Each athlete's earliest activity (of the seeded ones) as stored."""
    frame = stores.repository("activities").read_frame({"athleteId": athlete})
    return frame.sort_values("startTime").iloc[0].to_dict()


def _moved_later(stores: Stores) -> dict[str, date]:
    """Every athlete's first activity moved 20 days on; the dates its recompute starts from."""
    moved = []
    for athlete in ATHLETES:
        first = _earliest(stores, athlete)
        day = date.fromisoformat(first["startTime"][:10]) + pd.Timedelta(days=20)
        moved.append({**_producer_fields(first), "startTime": f"{day}T12:00:00Z"})
    since = rows.upsert_rows(stores, "activities", moved)["recomputeFrom"]
    return {a: date.fromisoformat(d) for a, d in since.items()}


def _producer_fields(row: dict) -> dict:
    fields = ("activityId", "athleteId", "sport", "durationSec", "avgHr", "normalizedPowerW")
    return {name: (None if pd.isna(row[name]) else row[name]) for name in fields}


def _assert_same(got: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(got[table], frame, check_dtype=False, obj=table)


@pytest.mark.parametrize("how", ["incremental", "full"])
def test_a_first_activity_moved_later_leaves_no_rows_before_it(
    stores: Stores, how: str, tmp_path: Path
) -> None:
    recompute.recompute_many(stores, dict.fromkeys(ATHLETES))
    since = _moved_later(stores)
    recompute.recompute_many(stores, since if how == "incremental" else dict.fromkeys(since))
    fresh = seeded(Settings.for_home(tmp_path / "fresh"))  # CSV: SQL gives its numbers
    try:
        stored = stores.repository("activities").read_frame().to_dict("records")
        final = [{**_producer_fields(row), "startTime": row["startTime"]} for row in stored]
        rows.upsert_rows(fresh, "activities", final)
        recompute.recompute_many(fresh, dict.fromkeys(ATHLETES))
        _assert_same(outputs(stores), outputs(fresh))
    finally:
        fresh.close()
    for athlete in ATHLETES:
        first_day = _earliest(stores, athlete)["startTime"][:10]
        daily = stores.repository("daily_metrics").read_frame({"athleteId": athlete})
        assert daily["date"].min() >= str(date.fromisoformat(first_day) - pd.Timedelta(days=1))


def test_an_athlete_without_activities_loses_its_rows_and_the_rollup_goes_on(
    stores: Stores,
) -> None:
    recompute.recompute_many(stores, dict.fromkeys(ATHLETES))
    rows.upsert_rows(stores, "athlete", [{"athleteId": "newcomer", "timezone": "UTC"}])
    assert "newcomer" in recompute.changed_athletes(stores, None)
    recompute.nightly_rollup(stores)  # the newcomer has no activity: nothing to compute
    assert recompute.recompute_many(stores, {"newcomer": None})["athletes"] == 1
    for table in ("daily_metrics", "weekly_metrics", "activities_metrics"):
        assert stores.repository(table).read_frame({"athleteId": "newcomer"}).empty
    assert not stores.repository("daily_metrics").read_frame({"athleteId": ATHLETES[0]}).empty


def test_weeks_from_the_days_just_written_equal_weeks_from_the_days_read_back(
    stores: Stores, tmp_path: Path
) -> None:
    """recompute_many hands a full group's daily rows to its weekly step in memory; the
    separate weekly job reads them back from storage. Both give the same rows."""
    recompute.recompute_many(stores, dict.fromkeys(ATHLETES))
    apart = seeded(Settings.for_home(tmp_path / "apart"))
    try:
        daily = recompute.recompute_daily(apart, dict.fromkeys(ATHLETES))
        assert all(result["from"] for result in daily.values())
        recompute.recompute_weekly(apart, dict.fromkeys(ATHLETES))
        _assert_same(outputs(stores), outputs(apart))
    finally:
        apart.close()
