"""A saved session's activity row is written by the recompute that reads it: the flush its
save schedules, a direct daily recompute, the nightly rollup (which also repairs a flush that
never ran) and a full recompute. Sessions still to do are those with no activityVersion."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from storage import migrations
from storage.coordination import WATERMARK
from storage.settings import Settings
from storage.sql.database import Database
from storage.stores import Stores
from tasks import sessions
from tasks.metrics import recompute
from tests.factories import session_payload


def session_ids(stores: Stores, athlete: str) -> set[str]:
    activities = stores.repository("activities").read_frame({"athleteId": athlete})
    return set(activities["sessionId"].dropna())


def unsynced(stores: Stores, batch: int = 500) -> list[tuple[str, int]]:
    return [
        (session.session_id, version)
        for part in stores.sessions.unsynced_activities(batch)
        for session, version in part
    ]


def test_sessions_are_unsynced_until_marked_for_the_version_read(sql_settings: Settings) -> None:
    stores = Stores(sql_settings)
    stores.initialize()
    try:
        first = sessions.save_session(stores, session_payload(1))
        second = sessions.save_session(stores, session_payload(2))
        third = sessions.save_session(stores, session_payload(3))
        pending = unsynced(stores, batch=2)  # across batches, each once
        assert sorted(pending) == sorted((s.session_id, 1) for s in (first, second, third))
        assert sessions.sync_session_activities(stores) == 3
        assert unsynced(stores) == []
        assert session_ids(stores, "athlete-1") == {s.session_id for s in (first, second, third)}
        sessions.save_session(stores, session_payload(1, focus="upper body"))  # a change
        sessions.save_session(stores, session_payload(2))  # the same content: no change
        assert unsynced(stores) == [(first.session_id, 2)]
        stores.sessions.mark_activities_synced([(first.session_id, 1)])  # a stale read
        assert unsynced(stores) == [(first.session_id, 2)]
        assert sessions.sync_session_activities(stores) == 1
        assert stores.repository("activities").get(first.activity_id)["name"] == "upper body"
        assert sessions.sync_session_activities(stores) == 0
    finally:
        stores.close()


def test_the_nightly_rollup_writes_the_activity_of_a_session_whose_flush_never_ran(
    stores: Stores,
) -> None:
    stores.coordination.write_mark(
        WATERMARK, (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    )
    saved = sessions.save_session(stores, session_payload(3))  # its pending mark is never made
    assert session_ids(stores, "athlete-1") == set()
    result = recompute.nightly_rollup(stores)
    assert result["from"] == {"athlete-1": "2026-03-04"}  # its UTC day (03-05), less one
    assert session_ids(stores, "athlete-1") == {saved.session_id}
    loads = stores.repository("activities_metrics").read_frame({"athleteId": "athlete-1"})
    assert loads.set_index("activityId").loc[saved.activity_id, "load"] > 0


def test_a_full_recompute_counts_sessions_without_activity_rows(stores: Stores) -> None:
    saved = sessions.save_session(stores, session_payload(5, userId="athlete-9"))
    assert recompute.recompute_all(stores) == {"athletes": 1}
    assert session_ids(stores, "athlete-9") == {saved.session_id}


def test_one_athletes_recompute_writes_every_pending_row_and_the_others_count_it_later(
    stores: Stores,
) -> None:
    mine = sessions.save_session(stores, session_payload(1))
    theirs = sessions.save_session(stores, session_payload(2, userId="athlete-2"))
    recompute.recompute_daily(stores, {"athlete-1": date(2026, 3, 1)})
    assert session_ids(stores, "athlete-2") == {theirs.session_id}
    loads = stores.repository("activities_metrics")
    assert set(loads.read_frame({"athleteId": "athlete-1"})["activityId"]) == {mine.activity_id}
    assert loads.read_frame({"athleteId": "athlete-2"}).empty  # not its recompute yet
    recompute.recompute_daily(stores, theirs.recompute_from)
    assert set(loads.read_frame({"athleteId": "athlete-2"})["activityId"]) == {theirs.activity_id}


def test_the_migration_marks_sessions_saved_before_it_as_done(settings: Settings) -> None:
    """Those had their activity rows written by the save itself."""
    database = Database(settings.database_url)
    migrations.upgrade(database)
    stores = Stores(settings)
    stores.initialize()
    saved = sessions.save_session(stores, session_payload(1))
    stores.close()
    migrations.downgrade(database, "sessions@-1")
    migrations.upgrade(database)
    database.dispose()
    stores = Stores(settings)
    assert unsynced(stores) == []
    assert stores.sessions.get(saved.session_id) is not None
    stores.close()


def test_a_session_with_a_long_estimated_duration_is_written_as_at_most_a_day(
    stores: Stores,
) -> None:
    """200 working sets with 10 h rests each would be 83 days: no activity may last that."""
    payload = session_payload(1, durationSec=None)
    working = payload["exercises"][0]["workingSets"][0]
    payload["exercises"][0]["workingSets"] = [
        {**working, "set": n, "actualRestMinutes": 600.0} for n in range(100)
    ]
    payload["exercises"].append({**payload["exercises"][0], "Order": 99})
    saved = sessions.save_session(stores, payload)
    assert sessions.sync_session_activities(stores) == 1
    assert stores.repository("activities").get(saved.activity_id)["durationSec"] == 86_400


def test_a_refused_activity_row_is_logged_and_holds_up_no_other_session(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = sessions.save_session(stores, session_payload(1))
    bad = sessions.save_session(stores, session_payload(2))
    real = sessions.session_activity

    def activity(session: Any) -> dict[str, Any]:
        row = real(session)
        return {**row, "rpe": 11.0} if session.session_id == bad.session_id else row

    monkeypatch.setattr(sessions, "session_activity", activity)
    assert sessions.sync_session_activities(stores) == 1
    assert session_ids(stores, "athlete-1") == {good.session_id}
    assert f"session {bad.session_id}: its activity row was refused" in caplog.text
    assert unsynced(stores) == []  # not tried again by every recompute
