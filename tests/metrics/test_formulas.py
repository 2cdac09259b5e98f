"""The metric formulas (docs/metrics.md) against hand-computed values, through CSV storage."""

from __future__ import annotations

import math

import pytest

from storage.errors import ValidationError
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute

K42, K7 = 1 - math.exp(-1 / 42), 1 - math.exp(-1 / 7)


def act(
    n: int,
    start: str,
    athlete: str = "a",
    sport: str = "run",
    duration: float = 3600,
    **extra: object,
) -> dict:
    return {
        "activityId": f"x{n}",
        "athleteId": athlete,
        "startTime": start,
        "sport": sport,
        "durationSec": duration,
        **extra,
    }


def daily(stores: Stores, athlete: str = "a") -> dict[str, dict]:
    frame = stores.repository("daily_metrics").read_frame({"athleteId": athlete})
    return {r["date"]: r for r in frame.to_dict("records")}


def full(stores: Stores, athlete: str = "a") -> None:
    recompute.recompute_daily(stores, {athlete: None})
    recompute.recompute_weekly(stores, {athlete: None})


def test_one_day_of_load_100_then_rest(stores: Stores) -> None:
    rows.ingest_activities(
        stores, [act(1, "2026-03-02T10:00:00Z", rpe=10), act(2, "2026-03-05T10:00:00Z", rpe=0)]
    )
    full(stores)
    days = daily(stores)
    assert list(days) == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    first = days["2026-03-02"]
    assert first["load"] == pytest.approx(100)
    assert first["ctl"] == pytest.approx(100 * K42) and first["atl"] == pytest.approx(100 * K7)
    assert first["tsb"] == 0
    second = days["2026-03-03"]
    assert second["load"] == 0 and second["activityCount"] == 0  # a rest day has a row
    assert second["ctl"] == pytest.approx(100 * K42 * (1 - K42))
    assert second["tsb"] == pytest.approx(100 * K42 - 100 * K7)


def test_local_midnight_decides_the_day(stores: Stores) -> None:
    rows.upsert_rows(stores, "athlete", [{"athleteId": "a", "timezone": "America/Denver"}])
    rows.ingest_activities(
        stores,
        [
            act(1, "2026-03-02T05:30:00Z", rpe=5),  # 23:30 on 1 Mar
            act(2, "2026-03-02T07:30:00Z", rpe=5),
        ],
    )  # 00:30 on 2 Mar
    full(stores)
    days = daily(stores)
    assert days["2026-03-01"]["activityCount"] == 1 and days["2026-03-02"]["activityCount"] == 1


@pytest.mark.parametrize(
    "extra, method, load",
    [
        ({"normalizedPowerW": 200, "avgPowerW": 150, "avgHr": 150, "rpe": 5}, "power", 100.0),
        ({"avgPowerW": 150, "avgHr": 150}, "power", 3600 * 150 * 0.75 / (200 * 3600) * 100),
        ({"avgHr": 136, "rpe": 5}, "hr", (136 / 170) ** 2 * 100),
        ({"rpe": 6}, "rpe", 36.0),
        ({}, "none", 0.0),
    ],
)
def test_each_load_method(stores: Stores, extra: dict, method: str, load: float) -> None:
    rows.upsert_rows(
        stores,
        "thresholds",
        [
            {
                "thresholdId": "p",
                "athleteId": "a",
                "sport": "ride",
                "validFrom": "2026-01-01",
                "ftpW": 200,
            },
            {
                "thresholdId": "h",
                "athleteId": "a",
                "sport": "ride",
                "validFrom": "2026-02-01",
                "thresholdHr": 170,
            },
        ],
    )
    rows.ingest_activities(stores, [act(1, "2026-03-02T10:00:00Z", sport="ride", **extra)])
    full(stores)
    metric = stores.repository("activities_metrics").get("x1")
    assert metric["loadMethod"] == method and metric["load"] == pytest.approx(load)


def test_threshold_change_mid_period_and_per_sport(stores: Stores) -> None:
    rows.upsert_rows(
        stores,
        "thresholds",
        [
            {
                "thresholdId": "t1",
                "athleteId": "a",
                "sport": "ride",
                "validFrom": "2026-01-01",
                "ftpW": 200,
            },
            {
                "thresholdId": "t2",
                "athleteId": "a",
                "sport": "ride",
                "validFrom": "2026-03-10",
                "ftpW": 250,
            },
        ],
    )
    rows.ingest_activities(
        stores,
        [
            act(1, "2026-03-09T10:00:00Z", sport="ride", normalizedPowerW=200),
            act(2, "2026-03-10T10:00:00Z", sport="ride", normalizedPowerW=200),
            act(3, "2026-03-10T12:00:00Z", sport="run", normalizedPowerW=200, rpe=5),
        ],
    )
    full(stores)
    repo = stores.repository("activities_metrics")
    assert repo.get("x1")["load"] == pytest.approx(100)
    assert repo.get("x2")["load"] == pytest.approx(64)
    assert repo.get("x3")["loadMethod"] == "rpe"  # a ride FTP does not apply to a run


def test_week_of_equal_days_has_no_monotony(stores: Stores) -> None:
    rows.upsert_rows(
        stores,
        "planned_sessions",
        [
            {
                "plannedSessionId": "p1",
                "athleteId": "a",
                "date": "2026-03-03",
                "sport": "run",
                "plannedLoad": 350,
            }
        ],
    )
    rows.ingest_activities(
        stores, [act(d, f"2026-03-{2 + d:02d}T10:00:00Z", rpe=5) for d in range(7)]
    )  # Mon 2 .. Sun 8 March, 25 each
    full(stores)
    week = stores.repository("weekly_metrics").get(("a", "2026-03-02"))
    assert week["load"] == pytest.approx(175) and week["activityCount"] == 7
    assert week["monotony"] is None and week["strain"] is None
    assert week["plannedLoad"] == 350 and week["compliance"] == pytest.approx(0.5)
    assert week["acwr"] == pytest.approx(25 / (175 / 28))  # days before the first count as 0
    last = daily(stores)["2026-03-08"]
    assert week["ctl"] == pytest.approx(last["ctl"]) and week["tsb"] == pytest.approx(last["tsb"])


def test_monotony_and_strain_by_hand(stores: Stores) -> None:
    loads = [100, 0, 50, 0, 100, 0, 0]  # rpe 10, -, rpe ~7.07, -, rpe 10
    rows.ingest_activities(
        stores,
        [
            act(1, "2026-03-02T10:00:00Z", rpe=10),
            act(2, "2026-03-04T10:00:00Z", rpe=math.sqrt(50)),
            act(3, "2026-03-06T10:00:00Z", rpe=10),
            act(4, "2026-03-08T10:00:00Z", rpe=0),
        ],
    )
    full(stores)
    week = stores.repository("weekly_metrics").get(("a", "2026-03-02"))
    mean = sum(loads) / 7
    std = math.sqrt(sum((x - mean) ** 2 for x in loads) / 7)
    assert week["monotony"] == pytest.approx(mean / std)
    assert week["strain"] == pytest.approx(250 * mean / std)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"durationSec": -1}, "durationSec"),
        ({"sport": "kayak"}, "sport"),
        ({"athleteId": "  \t"}, "athleteId"),
        ({"athleteId": None}, "athleteId"),
        ({"normalizedPowerW": float("nan"), "activityId": None}, "activityId"),
        ({"normalizedPowerW": "strong"}, "normalizedPowerW"),
        ({"startTime": "02/03/2026 10:00"}, "startTime"),
    ],
)
def test_bad_rows_name_row_and_field_and_write_nothing(
    stores: Stores, change: dict, field: str
) -> None:
    batch = [act(1, "2026-03-02T10:00:00Z"), {**act(2, "2026-03-03T10:00:00Z"), **change}]
    with pytest.raises(ValidationError) as caught:
        rows.ingest_activities(stores, batch)
    assert caught.value.field == field and "row 2" in str(caught.value)
    assert stores.repository("activities").read_frame().empty
