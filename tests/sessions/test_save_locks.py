"""A session's rows and its file change together, under one lock (SQLite's write lock, or
PostgreSQL advisory locks on the session and on its file name): a refused save writes
nothing, two saves of one session leave one file, and reconcile reports what it cannot
repair and goes on."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.errors import Conflict
from storage.sessions.model import parse_session
from storage.stores import Stores
from tasks import reconcile, sessions
from tests.factories import session_payload


def twin(payload: dict[str, Any]) -> dict[str, Any]:
    """Another session with the same day and uuid prefix, so the same file name."""
    other = str(uuid.uuid4())
    return {**payload, "_id": payload["_id"][:8] + other[8:], "userId": "athlete-twin"}


def test_a_save_refused_with_conflict_writes_nothing(sql_stores: Stores) -> None:
    first = sessions.save_session(sql_stores, session_payload(1))
    second = twin(session_payload(1))
    with pytest.raises(Conflict, match="already holds session"):
        sessions.save_session(sql_stores, second)
    assert sql_stores.sessions.get(second["_id"]) is None
    assert list(sql_stores.sessions.unsynced_activities()) == [
        [(sql_stores.sessions.load(first.session_id), 1)]
    ]
    assert json.loads(Path(first.json_path).read_text())["_id"] == first.session_id
    assert reconcile.reconcile_exports(sql_stores)["repaired"] == []


def test_reconcile_reports_a_session_it_cannot_repair_and_repairs_the_rest(
    sql_stores: Stores,
) -> None:
    first = sessions.save_session(sql_stores, session_payload(1))
    stranded = parse_session(twin(session_payload(1)))  # as saved before saves were locked
    sql_stores.sessions.save(stranded, first.json_path)
    later = sessions.save_session(sql_stores, session_payload(2))
    Path(later.json_path).unlink()
    repaired = reconcile.reconcile_exports(sql_stores)["repaired"]
    by_session = {entry["sessionId"]: entry["action"] for entry in repaired}
    assert by_session[stranded.session_id].startswith("skipped: ")
    assert "already holds session" in by_session[stranded.session_id]
    assert by_session[later.session_id] == "recreated" and Path(later.json_path).exists()


def test_two_saves_of_one_session_on_two_dates_leave_one_file(
    sql_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first save is held after its rows are written and before its file is: the second
    waits for it (before, it committed, wrote its file and removed the first's, and the
    first then wrote a second file)."""
    early = session_payload(3, date="2026-03-03T08:00:00Z")
    late = {**early, "date": "2026-03-09T08:00:00Z"}
    writing, release = threading.Event(), threading.Event()
    write_export = sessions.write_export

    def slow_first_write(folder: Path, session: Any, *, path: Path) -> Path:
        if session.date.day == 3 and not release.is_set():
            writing.set()
            release.wait(10)
        return write_export(folder, session, path=path)

    monkeypatch.setattr(sessions, "write_export", slow_first_write)
    other = Stores(sql_stores.settings)
    failures: list[BaseException] = []

    def save(stores: Stores, payload: dict[str, Any]) -> None:
        try:
            sessions.save_session(stores, payload)
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    first = threading.Thread(target=save, args=(sql_stores, early))
    first.start()
    assert writing.wait(10)
    second = threading.Thread(target=save, args=(other, late))
    second.start()
    time.sleep(1.0)  # the second save waits on the lock meanwhile
    release.set()
    first.join(30)
    second.join(30)
    other.close()
    assert not failures, failures
    files = sorted(sql_stores.settings.export_dir.glob("training_session_*.json"))
    assert [path.name for path in files] == [f"training_session_2026_03_09_{early['_id'][:8]}.json"]
    assert sql_stores.sessions.load(early["_id"]).date.day == 9


def test_a_save_reads_its_athletes_pending_marks_after_its_rows(sql_stores: Stores) -> None:
    """The marks come back with the save (read as its locks are freed), so its pending mark
    needs no read of its own; they show the state after the save, and mark_pending acts on
    them just as on a read of its own."""
    coordination = sql_stores.coordination
    first = sessions.save_session(sql_stores, session_payload(1, userId="marked"))
    assert first.marks == {"marked": (False, None, None)}  # not pending yet
    since = first.recompute_from["marked"]
    assert coordination.mark_pending("marked", since, marks=first.marks["marked"]) is True
    again = sessions.save_session(sql_stores, session_payload(2, userId="marked"))
    found, day, marked_at = again.marks["marked"]
    assert found and str(day) == str(since) and marked_at is not None  # SQLite: ISO text
    later = again.recompute_from["marked"]
    assert later > since  # covered, with the flush live: no write, no flush to schedule
    assert coordination.mark_pending("marked", later, marks=again.marks["marked"]) is False
    earlier = since - timedelta(days=30)  # not covered: a read of its own would move the mark
    stale_cover = (True, str(earlier - timedelta(days=1)), marked_at)
    assert coordination.mark_pending("marked", earlier, marks=stale_cover) is False
    assert coordination.pending_athletes() == {"marked": since}  # the row given was used
    coordination.clear(coordination.take_all_pending())  # a recompute did them
    gone = sessions.save_session(sql_stores, session_payload(3, userId="marked"))
    assert gone.marks == {"marked": (False, None, None)}  # taken since: the next mark schedules
