"""Session jobs as plain functions on the embedded default (SQLite + local folders)."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from storage.errors import Conflict, NotFound, ValidationError
from storage.settings import Settings
from storage.stores import Stores
from tasks import failures, reconcile, rows, sessions
from tasks.metrics import recompute
from tests.factories import session_payload


def nothing_written(stores: Stores) -> bool:
    return stores.sessions.count() == 0 and not list(stores.settings.export_dir.iterdir())


@pytest.mark.parametrize(
    "change, field",
    [
        ({"_id": "../../etc/passwd"}, "_id"),
        ({"_id": "a/b"}, "_id"),
        ({"userId": "../evil"}, "userId"),
        ({"date": "yesterday"}, "date"),
        ({"date": "9999-12-31T23:59:59-05:00"}, "date"),
        ({"date": "0001-01-01T00:00:00+05:00"}, "date"),
        ({"week": "3"}, "week"),
        ({"isDeloadWeek": "no"}, "isDeloadWeek"),
        ({"durationSec": -5}, "durationSec"),
        ({"exercises": "squats"}, "exercises"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_payload_names_the_field_and_writes_nothing(
    stores: Stores, change: dict, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        sessions.save_session(stores, session_payload(1, **change))
    assert caught.value.field.split(".")[0] == field
    assert field in str(caught.value)
    assert nothing_written(stores)


def test_a_number_that_is_not_finite_is_named_as_such(stores: Stores) -> None:
    payload = session_payload(1)
    payload["exercises"][0]["workingSets"][0]["weightKg"] = float("nan")  # a Python producer
    with pytest.raises(ValidationError, match="weightKg: Input should be a finite number"):
        sessions.save_session(stores, payload)
    assert nothing_written(stores)


def test_nested_field_errors_name_the_path(stores: Stores) -> None:
    payload = session_payload(1)
    payload["exercises"][0]["workingSets"][1]["rpe"] = 12
    with pytest.raises(ValidationError) as caught:
        sessions.save_session(stores, payload)
    assert caught.value.field == "exercises.0.workingSets.1.rpe"
    assert nothing_written(stores)


@pytest.mark.parametrize("as_text", [False, True])
def test_text_holding_a_nul_is_refused_naming_it(stores: Stores, as_text: bool) -> None:
    """A NUL in any text (a focus, an exercise name, a set's notes) fails the save naming the
    field: accepted, it would leave the session without its activity row later."""
    for where in ("focus", "userName", "exercises.0.Name", "exercises.0.workingSets.1.notes"):
        payload = session_payload(1)
        *path, last = where.split(".")
        holder: Any = payload
        for part in path:
            holder = holder[int(part)] if part.isdigit() else holder[part]
        holder[last] = "le\x00gs"
        with pytest.raises(ValidationError, match="NUL") as caught:
            sessions.save_session(stores, json.dumps(payload) if as_text else payload)
        assert caught.value.field == where
    assert nothing_written(stores)


def test_oversized_payload_is_refused(stores: Stores) -> None:
    payload = session_payload(1, focus="x" * 1000)
    payload["exercises"] = [{**payload["exercises"][0], "Order": n} for n in range(200)]
    small = stores.settings.with_(max_payload_bytes=20_000)
    with pytest.raises(ValidationError, match="limit"):
        sessions.save_session(Stores(small), payload)
    assert nothing_written(stores)


def test_save_is_idempotent(stores: Stores) -> None:
    first = sessions.save_session(stores, session_payload(1))
    second = sessions.save_session(stores, session_payload(1))
    assert first.result() == second.result() and second.changed is False
    assert stores.sessions.count() == 1
    assert len(list(stores.settings.export_dir.glob("*.json"))) == 1
    changed = sessions.save_session(stores, session_payload(1, focus="upper body"))
    assert changed.changed and stores.sessions.get(first.session_id).version == 2


def test_export_file_name_and_content(stores: Stores) -> None:
    saved = sessions.save_session(stores, session_payload(1))
    path = Path(saved.json_path)
    assert path.name == f"training_session_2026_03_02_{saved.session_id[:8]}.json"
    document = json.loads(path.read_text())
    assert document["_id"] == saved.session_id and document["dataModelVersion"] == 1
    assert document["date"].endswith("-07:00")


def test_same_prefix_same_day_is_a_conflict_not_an_overwrite(stores: Stores) -> None:
    first = session_payload(1)
    twin = session_payload(1, _id=first["_id"][:8] + "-0000-4000-8000-000000000000")
    sessions.save_session(stores, first)
    with pytest.raises(Conflict):
        sessions.save_session(stores, twin)
    on_disk = json.loads(next(stores.settings.export_dir.glob("*.json")).read_text())
    assert on_disk["_id"] == first["_id"]


def test_reconcile_recreates_deleted_and_rewrites_stale(stores: Stores) -> None:
    a = sessions.save_session(stores, session_payload(1))
    b = sessions.save_session(stores, session_payload(2))
    Path(a.json_path).unlink()
    Path(b.json_path).write_text(json.dumps({"_id": b.session_id, "stale": True}))
    result = reconcile.reconcile_exports(stores)
    assert {"sessionId": a.session_id, "action": "recreated"} in result["repaired"]
    assert {"sessionId": b.session_id, "action": "rewritten"} in result["repaired"]
    assert reconcile.reconcile_exports(stores)["repaired"] == []


def test_reconcile_imports_orphan_files(stores: Stores, settings: Settings) -> None:
    saved = sessions.save_session(stores, session_payload(3))
    document = Path(saved.json_path).read_text()
    other = Stores(settings.with_(database_url=f"sqlite:///{settings.home / 'other.sqlite'}"))
    other.initialize()
    result = reconcile.reconcile_exports(other)
    assert result["repaired"] == [{"sessionId": saved.session_id, "action": "imported"}]
    assert other.sessions.load(saved.session_id).document() == json.loads(document)


def test_imports_name_the_athletes_whose_metrics_they_changed(
    stores: Stores, settings: Settings
) -> None:
    folder = settings.import_dir / "batch"
    folder.mkdir(parents=True)
    payload = session_payload(5, userId="ath-import")  # 2026-03-06 at 18:00 -07:00
    stamp = {"dataModelVersion": 1, "dataModelType": "training_session_log"}
    (folder / "one.json").write_text(json.dumps({**payload, **stamp}))
    assert sessions.import_sessions(stores, "batch")["recomputeFrom"] == {
        "ath-import": "2026-03-05"
    }
    assert sessions.import_sessions(stores, "batch")["recomputeFrom"] == {}  # nothing changed
    other = Stores(settings.with_(database_url=f"sqlite:///{settings.home / 'other.sqlite'}"))
    other.initialize()
    assert reconcile.reconcile_exports(other)["recomputeFrom"] == {"ath-import": "2026-03-05"}
    assert reconcile.reconcile_exports(other)["recomputeFrom"] == {}


def test_import_folder_must_stay_inside_import_dir(stores: Stores, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for folder in (str(outside), "../../", "/etc"):
        with pytest.raises(ValidationError, match="outside"):
            sessions.import_sessions(stores, folder)
    with pytest.raises(NotFound):
        sessions.import_sessions(stores, "missing")
    for unusable in ("bat\x00ch", "x" * 5000):  # a NUL; a name longer than any folder's
        with pytest.raises(ValidationError):
            sessions.import_sessions(stores, unusable)


def test_a_link_to_a_file_outside_the_folder_is_refused(
    stores: Stores, settings: Settings, tmp_path: Path
) -> None:
    """A session file outside the import (or export) folder is never read through a link."""
    outside = tmp_path / "elsewhere.json"
    stamp = {"dataModelVersion": 1, "dataModelType": "training_session_log"}
    outside.write_text(json.dumps({**session_payload(7), **stamp}))
    folder = settings.import_dir / "batch"
    folder.mkdir(parents=True)
    (folder / "link.json").symlink_to(outside)
    result = sessions.import_sessions(stores, "batch")
    assert result["imported"] == 0 and "outside" in result["errors"][0]["error"]
    settings.export_dir.mkdir(parents=True, exist_ok=True)
    (settings.export_dir / "training_session_2026_03_08_linked00.json").symlink_to(outside)
    repaired = reconcile.reconcile_exports(stores)["repaired"]
    assert [r["action"] for r in repaired] == [repaired[0]["action"]]
    assert repaired[0]["action"].startswith("skipped") and "outside" in repaired[0]["action"]
    assert stores.sessions.count() == 0


def test_reconcile_skips_a_saved_sessions_file_replaced_by_a_link_out_of_the_folder(
    stores: Stores, tmp_path: Path
) -> None:
    """The link is neither read nor written through, and the other sessions still get their
    repair: one planted link must not stop the hourly reconcile."""
    linked = sessions.save_session(stores, session_payload(8))
    other = sessions.save_session(stores, session_payload(9))
    outside = tmp_path / "not-an-export.txt"
    outside.write_text("private\n")
    Path(linked.json_path).unlink()
    Path(linked.json_path).symlink_to(outside)
    Path(other.json_path).unlink()
    result = reconcile.reconcile_exports(stores)
    by_session = {r["sessionId"]: r["action"] for r in result["repaired"]}
    assert by_session[other.session_id] == "recreated" and Path(other.json_path).exists()
    assert (
        by_session[linked.session_id].startswith("skipped")
        and "outside" in by_session[linked.session_id]
    )
    assert len(result["repaired"]) == 2  # the link is not also taken for an unknown file
    assert outside.read_text() == "private\n" and Path(linked.json_path).is_symlink()


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_values_nested_past_the_limit_are_validation_errors(stores: Stores) -> None:
    """990 levels decode (a worker's message parser allows ~1,000) but JSON encoding, repr and
    validation recurse once per level and hit Python's recursion limit on top of the job's own
    stack: RecursionError instead of VALIDATION, and the failure log could not record it."""
    deep_name = session_payload(1)
    deep_name["exercises"][0]["Name"] = nested(990)
    with pytest.raises(ValidationError, match="levels deep"):
        sessions.save_session(stores, deep_name)
    with pytest.raises(ValidationError):
        sessions.save_session(stores, "[" * 100_000)
    with pytest.raises(ValidationError, match="levels deep"):
        rows.upsert_rows(
            stores,
            "planned_metrics",
            [{"plannedSessionId": "p", "athleteId": "a", "date": "2026-01-01",
              "activityIds": nested(990)}],
        )  # fmt: skip
    assert nothing_written(stores)
    entry = failures.stored_arguments([nested(990)], {})
    assert list(entry) == ["omitted"] and "levels deep" in entry["omitted"]


def test_an_import_file_nested_past_the_limit_is_reported_and_the_rest_imported(
    stores: Stores, settings: Settings
) -> None:
    folder = settings.import_dir / "batch"
    folder.mkdir(parents=True)
    stamp = {"dataModelVersion": 1, "dataModelType": "training_session_log"}
    (folder / "good.json").write_text(json.dumps({**session_payload(1), **stamp}))
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    deeper = json.dumps({**session_payload(2), "x": []})
    (folder / "deeper.json").write_text(deeper.replace("[]", "[" * 990 + "]" * 990))
    result = sessions.import_sessions(stores, "batch")
    assert result["imported"] == 1
    assert sorted(error["file"] for error in result["errors"]) == ["deep.json", "deeper.json"]


def test_a_file_or_payload_naming_a_key_twice_is_refused(
    stores: Stores, settings: Settings
) -> None:
    """json keeps the last of two `_id`s: the file would be saved as another session."""
    folder = settings.import_dir / "twice"
    folder.mkdir(parents=True)
    stamp = '"dataModelVersion": 1, "dataModelType": "training_session_log", '
    text = json.dumps(session_payload(1)).replace("{", "{" + stamp, 1)
    twice = text.replace('"_id": ', '"_id": "6b1f0f0e-0000-4000-8000-000000000000", "_id": ', 1)
    (folder / "twice.json").write_text(twice)
    result = sessions.import_sessions(stores, "twice")
    assert result["imported"] == 0 and result["errors"][0]["file"] == "twice.json"
    assert "'_id' appears twice" in result["errors"][0]["error"]
    with pytest.raises(ValidationError, match="'_id' appears twice"):
        sessions.save_session(stores, twice)
    assert nothing_written(stores)


def test_export_unknown_or_bad_id(stores: Stores) -> None:
    with pytest.raises(ValidationError):
        sessions.export_session_json(stores, "../x")
    with pytest.raises(NotFound):
        sessions.export_session_json(stores, "7d5e8b0e-4f0a-4c59-9a53-2b1b6a3f9a10")


def test_session_counts_as_strength_activity_from_the_recompute_it_schedules(
    stores: Stores,
) -> None:
    saved = sessions.save_session(stores, session_payload(1))
    activities = stores.repository("activities")
    assert activities.get(saved.activity_id) is None  # left to the debounced recompute
    result = recompute.recompute_many(stores, saved.recompute_from)
    assert result["athletes"] == 1
    row = activities.get(saved.activity_id)
    assert row["sport"] == "strength" and row["durationSec"] == 3600
    assert row["rpe"] == pytest.approx((8 + 9 + 7) / 3)
    assert row["volumeKg"] == 100 * 5 + 100 * 4 + 80 * 8
    loads = stores.repository("activities_metrics").read_frame({"athleteId": "athlete-1"})
    assert saved.activity_id in set(loads["activityId"])  # the metrics counted it
    version = row["version"]
    recompute.recompute_many(stores, saved.recompute_from)  # nothing new: not rewritten
    assert activities.get(saved.activity_id)["version"] == version


def test_session_moved_to_another_day_keeps_one_file_and_stays_moved(stores: Stores) -> None:
    first = sessions.save_session(stores, session_payload(4))  # 2026-03-05, local -07:00
    assert sessions.sync_session_activities(stores) == 1
    moved = sessions.save_session(stores, session_payload(4, date="2026-03-20T18:00:00-07:00"))
    assert moved.json_path != first.json_path and not Path(first.json_path).exists()
    assert moved.recompute_from == {"athlete-1": date(2026, 3, 4)}  # the old day counts too
    for _ in range(2):  # the hourly repair must not bring the old day back
        assert reconcile.reconcile_exports(stores)["repaired"] == []
    assert stores.sessions.load(first.session_id).date.day == 20
    assert sessions.sync_session_activities(stores) == 1
    activities = stores.repository("activities").read_frame({"athleteId": "athlete-1"})
    assert activities["activityId"].tolist() == [moved.activity_id]  # moved, not copied
    assert str(activities["startTime"].iloc[0]).startswith("2026-03-2")


def test_reconcile_removes_an_older_copy_left_by_a_crash(stores: Stores) -> None:
    first = sessions.save_session(stores, session_payload(5))
    leftover = Path(first.json_path).read_bytes()
    os.utime(first.json_path, (1_000_000_000, 1_000_000_000))
    moved = sessions.save_session(stores, session_payload(5, date="2026-03-21T18:00:00-07:00"))
    Path(first.json_path).write_bytes(leftover)  # as if the worker died before removing it
    os.utime(first.json_path, (1_000_000_000, 1_000_000_000))
    result = reconcile.reconcile_exports(stores)
    assert result["repaired"] == [
        {
            "sessionId": moved.session_id,
            "action": f"removed older copy {Path(first.json_path).name}",
        }
    ]
    assert not Path(first.json_path).exists() and Path(moved.json_path).exists()
    assert stores.sessions.load(moved.session_id).date.day == 21


def test_reconcile_imports_a_copy_newer_than_the_sql_row(stores: Stores) -> None:
    """SQL restored from an older backup: the newer file under the new name wins."""
    first = sessions.save_session(stores, session_payload(6))
    older = Path(first.json_path).read_bytes()
    moved = sessions.save_session(stores, session_payload(6, date="2026-03-22T18:00:00-07:00"))
    newer = Path(moved.json_path).read_bytes()
    sessions.save_session(stores, json.loads(older))  # the SQL row goes back to the old day
    Path(moved.json_path).write_bytes(newer)
    result = reconcile.reconcile_exports(stores)
    assert result["repaired"] == [{"sessionId": moved.session_id, "action": "imported"}]
    assert stores.sessions.load(moved.session_id).date.day == 22
    assert not Path(first.json_path).exists()
