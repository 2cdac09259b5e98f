"""Recomputing from any day D (after changes on or after D) gives exactly the full recompute."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from storage.settings import Settings
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute

START = date(2026, 1, 1)
ACTIVITY = st.fixed_dictionaries(
    {
        "day": st.integers(0, 45),
        "hour": st.integers(0, 23),
        "sport": st.sampled_from(["run", "ride", "swim"]),
        "durationSec": st.floats(600, 10_000),
        "avgHr": st.none() | st.floats(100, 190),
        "normalizedPowerW": st.none() | st.floats(80, 400),
        "rpe": st.none() | st.floats(1, 10),
    }
)


def rows_of(items: list[dict], prefix: str) -> list[dict]:
    out = []
    for n, item in enumerate(items):
        day = START + timedelta(days=item["day"])
        out.append(
            {
                "activityId": f"{prefix}{n}",
                "athleteId": "p",
                "startTime": f"{day}T{item['hour']:02d}:15:00Z",
                "sport": item["sport"],
                "durationSec": item["durationSec"],
                "avgHr": item["avgHr"],
                "normalizedPowerW": item["normalizedPowerW"],
                "rpe": item["rpe"],
            }
        )
    return out


def snapshot(stores: Stores, table: str) -> pd.DataFrame:
    frame = stores.repository(table).read_frame({"athleteId": "p"})
    keys = ["date"] if "date" in frame else ["weekStartDate"]
    return (
        frame.drop(columns=["createdAt", "updatedAt", "version"])
        .sort_values(keys)
        .reset_index(drop=True)
    )


def assert_same_metrics(incremental: Stores, scratch: Stores) -> None:
    """Daily and weekly rows of athlete p alike, to 1e-9."""
    for table in ("daily_metrics", "weekly_metrics"):
        pd.testing.assert_frame_equal(
            snapshot(incremental, table),
            snapshot(scratch, table),
            check_exact=False,
            rtol=1e-9,
            atol=1e-9,
        )


def fresh(root: Path, name: str) -> Stores:
    stores = Stores(Settings.for_home(root / name))
    stores.initialize()
    rows.upsert_rows(stores, "athlete", [{"athleteId": "p", "timezone": "Asia/Kolkata"}])
    rows.upsert_rows(
        stores,
        "thresholds",
        [
            {
                "thresholdId": "f1",
                "athleteId": "p",
                "sport": "ride",
                "validFrom": "2026-01-01",
                "ftpW": 220,
            },
            {
                "thresholdId": "f2",
                "athleteId": "p",
                "sport": "ride",
                "validFrom": "2026-01-20",
                "ftpW": 240,
            },
            {
                "thresholdId": "h1",
                "athleteId": "p",
                "sport": "run",
                "validFrom": "2026-01-01",
                "thresholdHr": 172,
            },
        ],
    )
    return stores


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)  # shrinking is too slow here
@given(
    before=st.lists(ACTIVITY, min_size=1, max_size=25),
    later=st.lists(ACTIVITY, max_size=8),
    cut=st.integers(0, 45),
)
def test_incremental_equals_full(before: list[dict], later: list[dict], cut: int) -> None:
    since = START + timedelta(days=cut)
    additions = [{**a, "day": max(a["day"], cut + 1)} for a in later]  # local day >= D
    with tempfile.TemporaryDirectory() as root:
        incremental = fresh(Path(root), "inc")
        rows.ingest_activities(incremental, rows_of(before, "b"))
        recompute.recompute_daily(incremental, {"p": None})
        recompute.recompute_weekly(incremental, {"p": None})
        rows.ingest_activities(incremental, rows_of(additions, "l"))
        recompute.recompute_daily(incremental, {"p": since})
        recompute.recompute_weekly(incremental, {"p": since})

        scratch = fresh(Path(root), "full")
        rows.ingest_activities(scratch, rows_of(before, "b") + rows_of(additions, "l"))
        recompute.recompute_daily(scratch, {"p": None})
        recompute.recompute_weekly(scratch, {"p": None})
        assert_same_metrics(incremental, scratch)
        inc_loads = incremental.repository("activities_metrics").read_frame()
        full_loads = scratch.repository("activities_metrics").read_frame()
        assert sorted(inc_loads["activityId"]) == sorted(full_loads["activityId"])


@pytest.mark.parametrize("gap_days", [20, 75, 400])
def test_incremental_after_a_long_gap_equals_full(tmp_path: Path, gap_days: int) -> None:
    """The resume day lies months back: older months are read until a stored day is found,
    and the rest days in between are computed as a full recompute would."""
    first = [
        {"day": d, "hour": 7, "sport": "run", "durationSec": 3600.0, "avgHr": 150.0}
        | {"normalizedPowerW": None, "rpe": None}
        for d in range(0, 12, 2)
    ]
    new = [{**first[0], "day": 12 + gap_days, "avgHr": 160.0}]
    since = START + timedelta(days=12 + gap_days - 1)
    incremental = fresh(tmp_path, "inc")
    rows.ingest_activities(incremental, rows_of(first, "b"))
    recompute.recompute_daily(incremental, {"p": None})
    recompute.recompute_weekly(incremental, {"p": None})
    rows.ingest_activities(incremental, rows_of(new, "l"))
    daily = recompute.recompute_daily(incremental, {"p": since})
    assert daily["p"]["from"] == (START + timedelta(days=11)).isoformat()  # day after the last
    weekly = recompute.recompute_weekly(incremental, {"p": date.fromisoformat(daily["p"]["from"])})
    assert weekly["p"]["weeks"] < 12 + gap_days  # not every week again
    scratch = fresh(tmp_path, "full")
    rows.ingest_activities(scratch, rows_of(first, "b") + rows_of(new, "l"))
    recompute.recompute_daily(scratch, {"p": None})
    recompute.recompute_weekly(scratch, {"p": None})
    for table in ("daily_metrics", "weekly_metrics"):
        pd.testing.assert_frame_equal(
            snapshot(incremental, table), snapshot(scratch, table), check_exact=False, rtol=1e-9
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(before=st.lists(ACTIVITY, min_size=1, max_size=25), cut=st.integers(0, 45))
def test_moving_an_athletes_latest_activities_away_equals_full(
    before: list[dict], cut: int
) -> None:
    """Every activity from day `cut` on is given to another athlete, as a producer fixing its
    data would: the rest days that led up to them must go with them."""
    with tempfile.TemporaryDirectory() as root:
        incremental = fresh(Path(root), "inc")
        items = rows_of(before, "b")
        rows.ingest_activities(incremental, items)
        recompute.recompute_many(incremental, {"p": None})
        moved = [
            {**row, "athleteId": "q"}
            for row, b in zip(items, before, strict=True)
            if b["day"] >= cut
        ]
        changed = rows.ingest_activities(incremental, moved)["recomputeFrom"]
        recompute.recompute_many(
            incremental, {a: date.fromisoformat(d) for a, d in changed.items()}
        )

        scratch = fresh(Path(root), "full")
        kept = [row for row, b in zip(items, before, strict=True) if b["day"] < cut]
        rows.ingest_activities(scratch, kept)
        recompute.recompute_many(scratch, {"p": None})
        assert_same_metrics(incremental, scratch)
