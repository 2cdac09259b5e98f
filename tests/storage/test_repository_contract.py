"""One contract, every backend: memory (the fake), CSV, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from storage.errors import AlreadyExists, Conflict, ErrorCode, NotFound, ValidationError
from tests.storage.repos import BACKENDS, repository_factory


@pytest.fixture(params=BACKENDS)
def repo_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    with repository_factory(request.param, tmp_path) as make:
        yield make


def goal(goal_id: str, **extra: object) -> dict:
    return {"goalId": goal_id, "athleteId": "a1", "title": f"goal {goal_id}", **extra}


def test_add_get_roundtrip_keeps_types(repo_factory) -> None:
    repo = repo_factory("goals")
    stored = repo.add(goal("g1", targetDate="2026-05-01", targetValue=0.1 + 0.2, status="open"))
    assert stored["version"] == 1 and stored["createdAt"] == stored["updatedAt"]
    row = repo.get("g1")
    assert row is not None
    assert row["targetDate"] == date(2026, 5, 1)
    assert row["targetValue"] == 0.1 + 0.2
    assert row["metric"] is None and row["status"] == "open"
    assert row["createdAt"].tzinfo is not None


def test_get_missing_is_none(repo_factory) -> None:
    assert repo_factory("goals").get("nope") is None


def test_add_duplicate_is_already_exists(repo_factory) -> None:
    repo = repo_factory("goals")
    repo.add(goal("g1"))
    with pytest.raises(AlreadyExists) as caught:
        repo.add(goal("g1"))
    assert caught.value.code is ErrorCode.ALREADY_EXISTS and caught.value.table == "goals"


def test_update_partial_bumps_version(repo_factory) -> None:
    repo = repo_factory("goals")
    repo.add(goal("g1", metric="ctl"))
    updated = repo.update("g1", {"title": "new title"})
    assert updated["title"] == "new title" and updated["metric"] == "ctl"
    assert updated["version"] == 2 and updated["updatedAt"] >= updated["createdAt"]
    assert repo.get("g1")["title"] == "new title"


def test_update_missing_is_not_found(repo_factory) -> None:
    with pytest.raises(NotFound) as caught:
        repo_factory("goals").update("ghost", {"title": "x"})
    assert caught.value.key == "ghost"


def test_stale_version_is_conflict(repo_factory) -> None:
    repo = repo_factory("goals")
    repo.add(goal("g1"))
    repo.update("g1", {"title": "second", "version": 1})
    with pytest.raises(Conflict):
        repo.update("g1", {"title": "stale", "version": 1})
    with pytest.raises(Conflict):
        repo.upsert(goal("g1", title="stale too", version=1))
    assert repo.get("g1")["title"] == "second"


def test_upsert_inserts_then_updates_and_noop_keeps_version(repo_factory) -> None:
    repo = repo_factory("goals")
    assert repo.upsert(goal("g1"))["version"] == 1
    assert repo.upsert(goal("g1", title="changed"))["version"] == 2
    same = repo.upsert(goal("g1", title="changed"))
    assert same["version"] == 2


def test_upsert_many_and_delete(repo_factory) -> None:
    repo = repo_factory("goals")
    assert repo.upsert_many(goal(f"g{i:03d}") for i in range(25)) == 25
    assert repo.delete("g003") is True
    assert repo.delete("g003") is False
    assert repo.get("g003") is None
    assert len(list(repo.iterate(page_size=7))) == 24


def test_list_filters_and_cursor_pagination(repo_factory) -> None:
    repo = repo_factory("goals")
    repo.upsert_many([goal(f"g{i:02d}", athleteId="a1" if i % 2 else "a2") for i in range(10)])
    first = repo.list({"athleteId": "a1"}, limit=3)
    assert [r["goalId"] for r in first.rows] == ["g01", "g03", "g05"]
    second = repo.list({"athleteId": "a1"}, limit=3, cursor=first.next_cursor)
    assert [r["goalId"] for r in second.rows] == ["g07", "g09"]
    assert second.next_cursor is None


def test_composite_key_table(repo_factory) -> None:
    repo = repo_factory("daily_metrics")
    repo.upsert_many(
        [{"athleteId": "a", "date": f"2026-01-0{d}", "load": float(d)} for d in range(1, 6)]
    )
    assert repo.get(("a", "2026-01-03"))["load"] == 3.0
    assert repo.get({"athleteId": "a", "date": date(2026, 1, 4)})["load"] == 4.0
    assert repo.delete(("a", "2026-01-03"))
    assert [r["date"].day for r in repo.list({"athleteId": "a"}).rows] == [1, 2, 4, 5]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"goalId": "g", "athleteId": "a"}, "title"),
        ({"goalId": "g", "athleteId": "a", "title": "t", "targetValue": "lots"}, "targetValue"),
        ({"goalId": "g", "athleteId": "a", "title": "t", "status": "maybe"}, "status"),
        ({"goalId": "g", "athleteId": "a", "title": "t", "colour": "red"}, "colour"),
        ({"goalId": "g", "athleteId": "a", "title": "t", "targetDate": "31/12/2026"}, "targetDate"),
    ],
)
def test_validation_names_the_field(repo_factory, bad: dict, field: str) -> None:
    repo = repo_factory("goals")
    with pytest.raises(ValidationError) as caught:
        repo.add(bad)
    assert caught.value.field == field and field in str(caught.value)
    assert repo.get("g") is None


def test_datetime_normalised_to_utc(repo_factory) -> None:
    repo = repo_factory("activities")
    repo.add(
        {
            "activityId": "x",
            "athleteId": "a",
            "startTime": "2026-03-01T07:30:00-07:00",
            "sport": "run",
            "durationSec": 3600,
        }
    )
    assert repo.get("x")["startTime"] == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)


def test_bad_cursor_is_validation(repo_factory) -> None:
    with pytest.raises(ValidationError):
        repo_factory("goals").list(cursor="not-a-cursor!")


def test_health(repo_factory) -> None:
    assert repo_factory("goals").health()["ok"] is True


def test_a_bulk_validation_error_shows_the_value_as_sent(repo_factory) -> None:
    """Every backend reports the bad cell as plain Python (the CSV one validates whole frames,
    whose cells are numpy scalars)."""
    repo = repo_factory("activities")
    frame = pd.DataFrame(
        {
            "activityId": ["ok", "bad"],
            "athleteId": ["a", "a"],
            "startTime": ["2026-03-01T07:30:00Z"] * 2,
            "sport": ["run", "run"],
            "durationSec": [3600.0, -5.0],
        }
    )
    with pytest.raises(ValidationError) as caught:
        repo.upsert_frame(frame)
    message = str(caught.value)
    assert "durationSec" in message and "(got -5.0)" in message and "np." not in message


@pytest.mark.parametrize(
    "change, field",
    [
        ({"startTime": "0001-01-01T00:00:00+05:00"}, "startTime"),
        ({"startTime": "9999-12-31T23:59:59-05:00"}, "startTime"),
        ({"startTime": "1600-01-01T00:00:00Z"}, "startTime"),
        ({"startTime": 1_700_000_000}, "startTime"),  # epoch seconds: not read as nanoseconds
        ({"startTime": 1e308}, "startTime"),  # refused without a numpy warning in the log
        ({"durationSec": 1e300}, "durationSec"),
        ({"distanceM": 1e12}, "distanceM"),
    ],
)
@pytest.mark.parametrize("path", ["row", "frame"])
@pytest.mark.filterwarnings("error")
def test_implausible_activities_are_refused(
    repo_factory, change: dict, field: str, path: str
) -> None:
    """Years outside 1900-2999 and week-long-plus durations are typos that would overflow
    dates or metrics; one row and a bulk frame are checked alike."""
    repo = repo_factory("activities")
    row = {
        "activityId": "x",
        "athleteId": "a",
        "startTime": "2026-03-01T07:30:00Z",
        "sport": "run",
        "durationSec": 3600.0,
        **change,
    }
    with pytest.raises(ValidationError) as caught:
        repo.add(row) if path == "row" else repo.upsert_frame(pd.DataFrame([row]))
    assert caught.value.field == field
    assert repo.get("x") is None


def test_a_threshold_dated_outside_the_years_is_refused(repo_factory) -> None:
    repo = repo_factory("thresholds")
    with pytest.raises(ValidationError, match="1900-2999"):
        repo.add({"thresholdId": "t", "athleteId": "a", "sport": "run", "validFrom": "1500-01-01"})
