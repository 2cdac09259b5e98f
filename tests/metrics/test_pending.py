"""A burst of changes schedules one flush that recomputes every pending athlete together,
each from its earliest changed date."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest

from storage.errors import LockTimeout, Unavailable
from storage.locks import acquire_lock
from storage.settings import Settings
from storage.stores import Stores
from tasks.base import TrainlogTask
from tasks.metrics.pending import (
    FLUSH_MARKER,
    forget_flush,
    mark_pending,
    restore_pending,
    take_all_pending,
    take_pending,
)
from tests.factories import activity
from workers.app import create_app


def test_a_burst_schedules_one_flush_from_each_athletes_earliest_date(stores: Stores) -> None:
    assert mark_pending(stores, "../../athlete", date(2026, 3, 5)) is True
    assert mark_pending(stores, "../../athlete", date(2026, 3, 2)) is False
    assert mark_pending(stores, "../../athlete", date(2026, 3, 9)) is False
    assert mark_pending(stores, "b", date(2026, 1, 1)) is False  # joins the scheduled flush
    markers = list((stores.settings.data_dir / ".pending-recompute").glob("*.json"))
    assert len(markers) == 2 and all(".." not in m.name for m in markers)  # ids never name files
    assert take_all_pending(stores) == {"../../athlete": date(2026, 3, 2), "b": date(2026, 1, 1)}
    assert take_all_pending(stores) == {}
    assert mark_pending(stores, "b", date(2026, 3, 9)) is True  # a new burst, a new flush


def test_a_full_recompute_wins_and_one_athlete_can_be_taken_alone(stores: Stores) -> None:
    assert mark_pending(stores, "a", date(2026, 3, 5))
    assert not mark_pending(stores, "a", None)
    assert not mark_pending(stores, "a", date(2026, 1, 1))
    assert take_pending(stores, "a") == (True, None)
    assert take_pending(stores, "a") == (False, None)


def test_a_lost_flush_is_scheduled_again_and_a_failed_one_gives_back(stores: Stores) -> None:
    assert mark_pending(stores, "b", date(2026, 3, 5))
    flush = stores.settings.data_dir / ".pending-recompute" / FLUSH_MARKER
    old = time.time() - 3 * stores.settings.visibility_timeout
    os.utime(flush, (old, old))
    assert mark_pending(stores, "b", date(2026, 3, 6)) is True  # the old job looks lost
    taken = take_all_pending(stores)
    restore_pending(stores, taken)  # the flush failed: its athletes are pending again
    mark_pending(stores, "c", date(2026, 4, 1))
    assert take_all_pending(stores) == {"b": date(2026, 3, 5), "c": date(2026, 4, 1)}


def test_a_covered_mark_does_not_wait_for_the_lock(stores: Stores) -> None:
    """Saves into an athlete already pending (flush scheduled) skip the pending lock; a mark
    that changes something still takes it."""
    assert mark_pending(stores, "a", date(2026, 3, 5))
    lock = stores.settings.data_dir / ".pending-recompute" / ".lock"
    with acquire_lock(lock, exclusive=True, timeout=1):  # another process busy in the folder
        assert mark_pending(stores, "a", date(2026, 3, 9)) is False
        with pytest.raises(LockTimeout):
            mark_pending(stores, "a", date(2026, 3, 1))  # earlier: the marker must change
    flush = stores.settings.data_dir / ".pending-recompute" / FLUSH_MARKER
    flush.unlink()  # the flush ran: the next mark schedules another, under the lock
    with acquire_lock(lock, exclusive=True, timeout=1), pytest.raises(LockTimeout):
        mark_pending(stores, "a", date(2026, 3, 9))
    assert take_all_pending(stores) == {"a": date(2026, 3, 5)}


def test_a_flush_that_could_not_be_sent_is_scheduled_by_the_next_mark(stores: Stores) -> None:
    assert mark_pending(stores, "a", date(2026, 3, 5)) is True
    assert mark_pending(stores, "a", date(2026, 3, 5)) is False
    forget_flush(stores)  # the flush job was not sent: the broker was down
    assert mark_pending(stores, "a", date(2026, 3, 5)) is True
    assert take_all_pending(stores) == {"a": date(2026, 3, 5)}


def test_a_daily_recompute_whose_weekly_follow_up_is_unsent_keeps_the_marker(
    settings: Settings, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker's date (earlier than the job's `since`) would be lost: the job's next run
    has only its arguments."""
    stores.repository("activities").upsert_many(
        [activity(1, day="2026-03-02"), activity(2, day="2026-03-09")]
    )
    mark_pending(stores, "athlete-1", date(2026, 3, 1))

    def unsent(task: TrainlogTask, name: str, *args: object, **kwargs: object) -> None:
        raise Unavailable(f"cannot queue {name}: broker unreachable")

    monkeypatch.setattr(TrainlogTask, "enqueue", unsent)
    app = create_app(settings.with_(max_retries=0))
    result = app.tasks["trainlog.recompute_daily_metrics"].apply(args=["athlete-1", "2026-03-08"])
    assert result.failed() and isinstance(result.result, Unavailable)
    assert take_pending(stores, "athlete-1") == (True, date(2026, 3, 1))
