"""A burst of changes schedules one flush that recomputes every pending athlete together,
each from its earliest changed date; the state is in SQL, shared by every worker host."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date

import pytest

from storage.coordination import FLUSH, PENDING_LOCK, WATERMARK, Coordination
from storage.errors import LockTimeout, Unavailable
from storage.settings import Settings
from storage.sql.named_locks import holding
from storage.sql.schema import sql_table
from storage.stores import Stores
from tests.factories import activity
from workers.app import create_app
from workers.task import TrainlogTask


@pytest.fixture
def shared(sql_settings: Settings) -> Iterator[Coordination]:
    """The coordination of storage on SQLite and on PostgreSQL."""
    stores = Stores(sql_settings)
    stores.initialize()
    yield stores.coordination
    stores.close()


def test_a_burst_schedules_one_flush_from_each_athletes_earliest_date(
    shared: Coordination,
) -> None:
    assert shared.mark_pending("../../athlete", date(2026, 3, 5)) is True
    assert shared.mark_pending("../../athlete", date(2026, 3, 2)) is False
    assert shared.mark_pending("../../athlete", date(2026, 3, 9)) is False
    assert shared.mark_pending("b", date(2026, 1, 1)) is False  # joins the scheduled flush
    assert shared.pending_athletes() == {"../../athlete": date(2026, 3, 2), "b": date(2026, 1, 1)}
    taken = shared.take_all_pending()
    assert taken.since == {"../../athlete": date(2026, 3, 2), "b": date(2026, 1, 1)}
    shared.clear(taken)  # the recompute is done
    assert shared.take_all_pending().since == {}
    assert shared.mark_pending("b", date(2026, 3, 9)) is True  # a new burst, a new flush


def test_a_full_recompute_wins_and_one_athlete_can_be_taken_alone(shared: Coordination) -> None:
    assert shared.mark_pending("a", date(2026, 3, 5))
    assert not shared.mark_pending("a", None)
    assert not shared.mark_pending("a", date(2026, 1, 1))
    taken = shared.take_pending("a")
    assert taken.since == {"a": None}
    shared.clear(taken)
    assert shared.take_pending("a").since == {}


def _age_flush(shared: Coordination, seconds: float) -> None:
    with shared.database.transaction(write=True) as connection:
        marks = sql_table("coordination_marks")
        connection.execute(
            marks.update().where(marks.c.name == FLUSH).values(markedAt=time.time() - seconds)
        )


def test_a_lost_flush_is_scheduled_again_and_a_failed_one_gives_back(
    shared: Coordination,
) -> None:
    assert shared.mark_pending("b", date(2026, 3, 5))
    _age_flush(shared, 1.5 * shared.flush_lost_after)
    assert shared.mark_pending("b", date(2026, 3, 6)) is True  # the old job looks lost
    shared.release(shared.take_all_pending())  # the flush failed: it gives its marks back
    assert shared.mark_pending("c", date(2026, 4, 1)) is True  # a flush is scheduled again
    assert shared.take_all_pending().since == {"b": date(2026, 3, 5), "c": date(2026, 4, 1)}


def test_a_covered_mark_does_not_wait_for_the_lock(shared: Coordination) -> None:
    """Saves into an athlete already pending (flush scheduled) skip the pending lock; a mark
    that changes something still takes it."""
    shared.lock_timeout = 0.5
    assert shared.mark_pending("a", date(2026, 3, 5))
    with holding(shared.database, [PENDING_LOCK], 1):  # another worker busy with the marks
        assert shared.mark_pending("a", date(2026, 3, 9)) is False
        with pytest.raises(LockTimeout):
            shared.mark_pending("a", date(2026, 3, 1))  # earlier: the mark must change
    _age_flush(shared, 10 * shared.flush_lost_after)  # the flush looks lost: schedule again
    with holding(shared.database, [PENDING_LOCK], 1), pytest.raises(LockTimeout):
        shared.mark_pending("a", date(2026, 3, 9))
    assert shared.take_all_pending().since == {"a": date(2026, 3, 5)}


def test_a_flush_that_could_not_be_sent_is_scheduled_by_the_next_mark(
    shared: Coordination,
) -> None:
    assert shared.mark_pending("a", date(2026, 3, 5)) is True
    assert shared.mark_pending("a", date(2026, 3, 5)) is False
    shared.forget_flush()  # the flush job was not sent: the broker was down
    assert shared.mark_pending("a", date(2026, 3, 5)) is True
    assert shared.take_all_pending().since == {"a": date(2026, 3, 5)}


def test_a_change_during_a_recompute_keeps_its_mark(shared: Coordination) -> None:
    """The recompute may have read its inputs before the change: the mark must outlive it,
    also when another flush is scheduled meanwhile (a covered mark with a live flush would
    otherwise be answered without a write)."""
    shared.mark_pending("a", date(2026, 3, 5))
    shared.mark_pending("b", date(2026, 3, 5))
    taken = shared.take_all_pending()
    assert shared.mark_pending("c", date(2026, 3, 1)) is True  # the next flush is scheduled
    assert shared.mark_pending("a", date(2026, 3, 9)) is False  # later, after the read
    shared.clear(taken)
    assert shared.pending_athletes() == {"a": date(2026, 3, 5), "c": date(2026, 3, 1)}
    single = shared.take_pending("a")  # recompute_daily_metrics of one athlete
    shared.mark_pending("a", date(2026, 3, 9))
    shared.clear(single)
    assert "a" in shared.pending_athletes()


def test_a_running_recompute_keeps_its_marks_from_the_next_until_it_looks_lost(
    shared: Coordination,
) -> None:
    shared.mark_pending("a", date(2026, 3, 5))
    first = shared.take_all_pending()
    shared.mark_pending("b", date(2026, 3, 5))
    assert shared.take_all_pending().since == {"b": date(2026, 3, 5)}  # not a's again
    assert shared.take_pending("a").since == {}
    shared.taken_lost_after = 0  # its worker was killed: past the hard time limit
    assert shared.take_all_pending().since == {"a": date(2026, 3, 5), "b": date(2026, 3, 5)}
    shared.clear(first)  # a late finish of the first clears nothing it no longer holds
    assert set(shared.pending_athletes()) == {"a", "b"}


def test_marks_are_named_values(shared: Coordination) -> None:
    assert shared.read_mark(WATERMARK) is None
    shared.write_mark(WATERMARK, "2026-03-01T00:00:00+00:00")
    shared.write_mark(WATERMARK, "2026-03-02T00:00:00+00:00")
    assert shared.read_mark(WATERMARK) == "2026-03-02T00:00:00+00:00"


def test_the_metrics_lock_is_one_per_database(shared: Coordination) -> None:
    with shared.metrics_lock(1), pytest.raises(LockTimeout), shared.metrics_lock(0.3):
        pass


def test_files_of_an_earlier_version_move_into_sql(settings: Settings) -> None:
    """Markers and the watermark that an earlier version kept in the data folder."""
    folder = settings.data_dir / ".pending-recompute"
    folder.mkdir(parents=True)
    (folder / "0a1b.json").write_text(json.dumps({"athleteId": "a", "since": "2026-03-02"}))
    (folder / "0c2d.json").write_text(json.dumps({"athleteId": "b", "since": None}))
    (folder / ".flush-scheduled").write_text("1700000000")
    watermark = settings.data_dir / ".rollup-watermark.json"
    watermark.write_text(json.dumps({"watermark": "2026-03-01T03:00:00+00:00"}))
    stores = Stores(settings)
    stores.initialize()
    try:
        assert stores.coordination.pending_athletes() == {"a": date(2026, 3, 2), "b": None}
        assert stores.coordination.read_mark(WATERMARK) == "2026-03-01T03:00:00+00:00"
        assert not folder.exists() and not watermark.exists()
    finally:
        stores.close()


def test_a_daily_recompute_whose_weekly_follow_up_is_unsent_keeps_the_mark(
    settings: Settings, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mark's date (earlier than the job's `since`) would be lost: the job's next run
    has only its arguments."""
    stores.repository("activities").upsert_many(
        [activity(1, day="2026-03-02"), activity(2, day="2026-03-09")]
    )
    stores.coordination.mark_pending("athlete-1", date(2026, 3, 1))

    def unsent(task: TrainlogTask, job: object, *args: object, **kwargs: object) -> None:
        raise Unavailable("cannot queue the weekly recompute: broker unreachable")

    monkeypatch.setattr(TrainlogTask, "enqueue", unsent)
    app = create_app(settings.with_(max_retries=0))
    result = app.tasks["trainlog.recompute_daily_metrics"].apply(args=["athlete-1", "2026-03-08"])
    assert result.failed() and isinstance(result.result, Unavailable)
    assert stores.coordination.take_pending("athlete-1").since == {"athlete-1": date(2026, 3, 1)}


def test_the_coordination_tables_are_not_open_to_producers(stores: Stores) -> None:
    from storage.errors import ValidationError
    from tasks.rows import upsert_rows

    for table in ("recompute_pending", "coordination_marks"):
        with pytest.raises(ValidationError, match=table):
            upsert_rows(stores, table, [{"athleteId": "a", "markedAt": 1.0}])
    assert stores.backend_of("recompute_pending") == "sql"


def test_a_change_of_an_athletes_own_row_recomputes_it_in_full(
    stores: Stores, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """upsert_rows on `athlete` asks for everything ("0001-01-01"): the flush job recomputes
    that athlete in full, where its weeks before the first date Python has overflowed."""
    stores.repository("activities").upsert_many([activity(1, day="2026-03-02")])
    sent: list[str] = []
    monkeypatch.setattr(TrainlogTask, "enqueue", lambda task, job, *a, **k: sent.append(job))
    app = create_app(settings.with_(max_retries=0))
    athlete = [{"athleteId": "athlete-1", "timezone": "Europe/Berlin"}]
    changed = app.tasks["trainlog.upsert_rows"].apply(args=["athlete", athlete]).get()
    assert changed["table"] == "athlete" and len(sent) == 1
    assert stores.coordination.pending_athletes() == {"athlete-1": None}  # everything
    flushed = app.tasks["trainlog.recompute_pending"].apply().get()
    assert flushed == {"athletes": 1, "from": {"athlete-1": None}}
    daily = stores.repository("daily_metrics").read_frame({"athleteId": "athlete-1"})
    assert list(daily["date"]) == ["2026-03-02"]
    for since in ("0001-01-03", "9999-12-28"):  # as a producer may send them
        app.tasks["trainlog.recompute_weekly_metrics"].apply(args=["athlete-1", since]).get()
