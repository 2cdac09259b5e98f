"""A link made by hand moves an activity's load to the planned session it names: the job that
writes it asks for a recompute, and a nightly rollup after it picks it up, so planned_metrics
never keeps the old figures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.settings import Settings
from storage.stores import Stores
from tasks.metrics import recompute
from tasks.rows import upsert_rows
from tests.factories import activity

ATHLETE = "athlete-1"


@pytest.fixture(params=["csv", "sql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    settings = Settings.for_home(tmp_path / "home", lock_timeout=2.0)
    if request.param == "sql":
        settings = settings.with_(table_backends={"*": "sql"})
    opened = Stores(settings)
    opened.initialize()
    yield opened
    opened.close()


def _planned(plan_id: str, day: str) -> dict[str, Any]:
    return {
        "plannedSessionId": plan_id,
        "athleteId": ATHLETE,
        "date": day,
        "sport": "run",
        "plannedLoad": 80.0,
    }


def _manual_link() -> dict[str, Any]:
    """The run of March 5 done for the session planned on March 4."""
    return {
        "linkId": "by-hand-1",
        "athleteId": ATHLETE,
        "plannedSessionId": "plan-mar-4",
        "activityId": f"act-{ATHLETE}-1",
        "method": "manual",
    }


def _set_up(stores: Stores) -> None:
    upsert_rows(stores, "athlete", [{"athleteId": ATHLETE, "timezone": "UTC"}])
    upsert_rows(stores, "planned_sessions", [_planned("plan-mar-4", "2026-03-04")])
    upsert_rows(stores, "activities", [activity(1, day="2026-03-05", rpe=6.0)])
    recompute.nightly_rollup(stores)
    assert _actual(stores) == (0.0, [])


def _actual(stores: Stores) -> tuple[float, list[str]]:
    row = stores.repository("planned_metrics").get("plan-mar-4")
    assert row is not None
    ids = row["activityIds"]
    return float(row["actualLoad"]), json.loads(ids) if isinstance(ids, str) else list(ids)


def test_a_manual_link_asks_for_a_recompute_from_its_earlier_day(stores: Stores) -> None:
    _set_up(stores)
    result = upsert_rows(stores, "links", [_manual_link()])
    assert result["recomputeFrom"] == {ATHLETE: "2026-03-03"}  # the plan's day, one early
    recompute.recompute_many(stores, {ATHLETE: recompute.parse_since("2026-03-03")})
    load, ids = _actual(stores)
    assert load > 0 and ids == [f"act-{ATHLETE}-1"]


def test_the_nightly_rollup_picks_up_a_manual_link(stores: Stores) -> None:
    _set_up(stores)
    upsert_rows(stores, "links", [_manual_link()])
    rollup = recompute.nightly_rollup(stores)
    assert rollup["from"] == {ATHLETE: "2026-03-03"}
    assert _actual(stores)[1] == [f"act-{ATHLETE}-1"]


def test_a_link_to_nothing_stored_asks_for_nothing(stores: Stores) -> None:
    link = {**_manual_link(), "plannedSessionId": "no-plan", "activityId": "no-activity"}
    assert upsert_rows(stores, "links", [link])["recomputeFrom"] == {}


def test_the_recomputes_own_auto_links_do_not_count_as_changes(stores: Stores) -> None:
    """A planned session and a run on its day: the rollup links them itself, and those links
    must not make the next night recompute the athlete again."""
    upsert_rows(stores, "athlete", [{"athleteId": ATHLETE, "timezone": "UTC"}])
    upsert_rows(stores, "planned_sessions", [_planned("plan-mar-4", "2026-03-04")])
    upsert_rows(stores, "activities", [activity(1, day="2026-03-04", rpe=6.0)])
    time.sleep(1.1)  # past the slack of SQL's pushed-down change bound
    assert recompute.nightly_rollup(stores)["athletes"] == 1
    assert _actual(stores)[1] == [f"act-{ATHLETE}-1"]  # linked by the rollup
    assert recompute.nightly_rollup(stores)["athletes"] == 0
