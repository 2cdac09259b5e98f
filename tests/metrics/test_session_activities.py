"""A saved session's activity row is written by the recompute that reads it: the flush its
save schedules, a direct daily recompute, the nightly rollup (which also repairs a flush that
never ran) and a full recompute."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from storage.settings import Settings
from storage.stores import Stores
from tasks import sessions
from tasks.metrics import recompute
from tasks.metrics.inputs import write_watermark
from tests.factories import session_payload


def session_ids(stores: Stores, athlete: str) -> set[str]:
    activities = stores.repository("activities").read_frame({"athleteId": athlete})
    return set(activities["sessionId"].dropna())


def test_sessions_of_and_changed_after_select_by_athlete_date_and_write_time(
    sql_settings: Settings,
) -> None:
    stores = Stores(sql_settings)
    stores.initialize()
    try:
        early = sessions.save_session(stores, session_payload(1))  # 2026-03-02 local
        late = sessions.save_session(stores, session_payload(9))  # 2026-03-10 local
        other = sessions.save_session(stores, session_payload(2, userId="athlete-2"))
        store = stores.sessions

        def ids(since: dict[str, datetime | None] | None) -> set[str]:
            return {s.session_id for batch in store.sessions_of(since) for s in batch}

        assert ids({"athlete-1": datetime(2026, 3, 5, tzinfo=UTC)}) == {late.session_id}
        assert ids({"athlete-1": None}) == {early.session_id, late.session_id}
        assert ids({"athlete-2": None, "nobody": None}) == {other.session_id}
        assert ids(None) == {early.session_id, late.session_id, other.session_id}
        everyone = store.changed_after(None)
        assert everyone["athlete-1"] == datetime(2026, 3, 3, 1, tzinfo=UTC)  # 18:00 -07:00
        assert set(everyone) == {"athlete-1", "athlete-2"}
        assert store.changed_after(datetime.now(UTC) + timedelta(seconds=1)) == {}
        assert set(store.changed_after(datetime.now(UTC) - timedelta(minutes=5))) == {
            "athlete-1",
            "athlete-2",
        }
    finally:
        stores.close()


def test_the_nightly_rollup_writes_the_activity_of_a_session_whose_flush_never_ran(
    stores: Stores,
) -> None:
    write_watermark(stores, (datetime.now(UTC) - timedelta(minutes=1)).isoformat())
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


def test_a_daily_recompute_from_a_later_day_leaves_earlier_sessions_alone(stores: Stores) -> None:
    early = sessions.save_session(stores, session_payload(1))
    late = sessions.save_session(stores, session_payload(20))
    recompute.recompute_daily(stores, {"athlete-1": date(2026, 3, 15)})
    assert session_ids(stores, "athlete-1") == {late.session_id}
    recompute.recompute_daily(stores, early.recompute_from)
    assert session_ids(stores, "athlete-1") == {early.session_id, late.session_id}


def test_a_recompute_from_the_first_day_there_is_takes_every_session(stores: Stores) -> None:
    """A threshold changed with no date marks its athlete from date.min (tasks/rows.py)."""
    saved = sessions.save_session(stores, session_payload(1))
    assert sessions.sync_session_activities(stores, {"athlete-1": date.min}) == 1
    assert session_ids(stores, "athlete-1") == {saved.session_id}
