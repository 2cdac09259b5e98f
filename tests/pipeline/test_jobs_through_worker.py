"""Every public job, sent by name through a real worker on the embedded broker and on Redis."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from storage.coordination import FLUSH
from storage.errors import Conflict, ValidationError
from storage.seeds.entries import entry_history, get_entry
from storage.sessions.schema import shipped_schema
from storage.settings import settings_env
from tests.factories import activity, session_payload
from tests.pipeline.conftest import Pipeline, wait_for
from workers.cli import main

TIMEOUT = 90


def test_save_session_writes_sql_json_and_its_flush_the_activity(pipeline: Pipeline) -> None:
    payload = session_payload(1)
    result = pipeline.client.run("save_session", payload, timeout=TIMEOUT)
    assert result["sessionId"] == payload["_id"]
    assert result["activityId"] == f"session-{payload['_id']}"
    document = json.loads(Path(result["jsonPath"]).read_text())
    jsonschema.validate(document, shipped_schema())
    assert document["dataModelType"] == "training_session_log"
    assert pipeline.stores.sessions.get(payload["_id"]) is not None
    activities = pipeline.stores.repository("activities")
    # written by the recompute_pending job the save scheduled, recompute_delay (2 s) later
    act = wait_for(lambda: activities.get(result["activityId"]), 30)
    assert act is not None and act["sport"] == "strength" and act["volumeKg"] == 100 * 9 + 640
    again = pipeline.client.run("save_session", payload, timeout=TIMEOUT)
    assert again == result
    assert pipeline.stores.sessions.get(payload["_id"]).version == 1


def test_ingest_then_recompute_daily_and_weekly(pipeline: Pipeline) -> None:
    rows = [activity(n, athlete="ath-ingest", day=f"2026-04-{1 + n:02d}") for n in range(8)]
    result = pipeline.client.run("ingest_activities", rows, timeout=TIMEOUT)
    assert result["upserted"] == 8 and result["recomputeFrom"] == {"ath-ingest": "2026-03-31"}
    daily = pipeline.client.run("recompute_daily_metrics", "ath-ingest", None, timeout=TIMEOUT)
    assert daily == {"athleteId": "ath-ingest", "from": "2026-04-01", "days": 8}
    weekly = pipeline.client.run("recompute_weekly_metrics", "ath-ingest", timeout=TIMEOUT)
    assert weekly["weeks"] == 2 and weekly["from"] == "2026-03-30"
    assert (
        len(pipeline.stores.repository("daily_metrics").list({"athleteId": "ath-ingest"}).rows) == 8
    )


def test_changes_are_followed_by_one_recompute_of_every_pending_athlete(
    pipeline: Pipeline,
) -> None:
    athletes = [f"ath-follow-{n}" for n in range(3)]
    sent = [
        pipeline.client.send("ingest_activities", [activity(n, athlete=a, day=f"2026-06-0{n}")])
        for n, a in enumerate(athletes, start=1)
    ]
    for result in sent:
        result.get(timeout=TIMEOUT)
    daily = pipeline.stores.repository("daily_metrics")
    assert wait_for(lambda: all(len(daily.read_frame({"athleteId": a})) for a in athletes), 30)
    coordination = pipeline.stores.coordination
    assert wait_for(
        lambda: coordination.read_mark(FLUSH) is None and not coordination.pending_athletes()
    )


def test_upsert_rows_and_nightly_rollup(pipeline: Pipeline) -> None:
    result = pipeline.client.run(
        "upsert_rows",
        "athlete",
        [{"athleteId": "ath-rollup", "timezone": "Europe/Berlin"}],
        timeout=TIMEOUT,
    )
    assert result == {"table": "athlete", "upserted": 1}
    pipeline.client.run("ingest_activities", [activity(1, athlete="ath-rollup")], timeout=TIMEOUT)
    rollup = pipeline.client.run("nightly_rollup", timeout=TIMEOUT)
    assert "ath-rollup" in rollup["from"] and rollup["athletes"] >= 1
    assert pipeline.client.run("nightly_rollup", timeout=TIMEOUT)["athletes"] == 0


def test_upsert_rows_refuses_a_stale_version_and_keeps_a_catalog_edit_in_use(
    pipeline: Pipeline,
) -> None:
    goal = {"goalId": f"goal-{uuid.uuid4()}", "athleteId": "ath-v", "title": "sub-3 marathon"}
    pipeline.client.run("upsert_rows", "goals", [goal], timeout=TIMEOUT)
    edited = {**goal, "title": "sub-2:59", "version": 1}  # as read
    pipeline.client.run("upsert_rows", "goals", [edited], timeout=TIMEOUT)
    with pytest.raises(Conflict, match="is at version 2, not 1"):  # another producer's edit
        pipeline.client.run(
            "upsert_rows", "goals", [{**edited, "title": "sub-3:10"}], timeout=TIMEOUT
        )
    entry = {
        "exerciseId": "farmer-carry-v",
        "name": "Farmers Walk V",
        "targetMuscleGroups": ["forearms"],
    }
    pipeline.client.run("upsert_rows", "exercise_catalog", [entry], timeout=TIMEOUT)
    stored = get_entry(pipeline.stores.database, "exercise_catalog", "farmer-carry-v")
    assert (stored["active"], stored["source"]) == (True, "user")
    history = entry_history(pipeline.stores.database, "exercise_catalog", "farmer-carry-v")
    assert [(h["action"], h["changedBy"]) for h in history] == [("added", "upsert_rows")]


def test_export_import_and_reconcile(pipeline: Pipeline) -> None:
    payload = session_payload(2)
    saved = pipeline.client.run("save_session", payload, timeout=TIMEOUT)
    exported = pipeline.client.run("export_session_json", payload["_id"], timeout=TIMEOUT)
    assert exported["path"] == saved["jsonPath"]
    folder = pipeline.settings.import_dir / f"batch-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    fresh = session_payload(3, _id=str(uuid.uuid4()), userId=f"ath-import-{uuid.uuid4().hex[:6]}")
    (folder / "fresh.json").write_text(
        json.dumps({**fresh, "dataModelVersion": 1, "dataModelType": "training_session_log"})
    )
    shutil.copy(saved["jsonPath"], folder / "known.json")
    (folder / "broken.json").write_text("{not json")
    imported = pipeline.client.run("import_sessions", folder.name, timeout=TIMEOUT)
    assert imported["imported"] == 1 and imported["unchanged"] == 1
    assert [e["file"] for e in imported["errors"]] == ["broken.json"]
    assert "recomputeFrom" not in imported  # the job queued the recompute itself
    assert pipeline.stores.sessions.get(fresh["_id"]) is not None
    daily = pipeline.stores.repository("daily_metrics")
    assert wait_for(lambda: len(daily.read_frame({"athleteId": fresh["userId"]})), 30)
    open(saved["jsonPath"], "w").close()
    reconciled = pipeline.client.run("reconcile_exports", timeout=TIMEOUT)
    assert {"sessionId": payload["_id"], "action": "rewritten"} in reconciled["repaired"]


def test_the_import_sessions_command_queues_the_recompute_a_worker_runs(
    pipeline: Pipeline,
) -> None:
    """Run outside any worker, the command marks the athlete pending and sends the
    recompute; the pipeline's worker writes the activity row and the metrics."""
    folder = pipeline.settings.import_dir / f"cli-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    fresh = session_payload(4, _id=str(uuid.uuid4()), userId=f"ath-cli-{uuid.uuid4().hex[:6]}")
    (folder / "fresh.json").write_text(
        json.dumps({**fresh, "dataModelVersion": 1, "dataModelType": "training_session_log"})
    )
    command = CliRunner().invoke(
        main, ["import-sessions", folder.name, "--json"], env=settings_env(pipeline.settings)
    )
    assert command.exit_code == 0, command.output
    result = json.loads(command.output)
    assert result["imported"] == 1 and result["recomputeQueued"] is True
    activities = pipeline.stores.repository("activities")
    assert wait_for(lambda: activities.get(f"session-{fresh['_id']}"), 30)
    daily = pipeline.stores.repository("daily_metrics")
    assert wait_for(lambda: len(daily.read_frame({"athleteId": fresh["userId"]})), 30)
    assert wait_for(lambda: not pipeline.stores.coordination.pending_athletes(), 30)


def recorded_failures(pipeline: Pipeline, task_id: str) -> list[dict[str, Any]]:
    """The task's rows in task_failures, once written (Celery stores the result first)."""
    return wait_for(
        lambda: [
            row
            for row in pipeline.stores.repository("task_failures").iterate()
            if row["taskId"] == task_id
        ]
    )


def test_invalid_payload_fails_at_once_and_is_recorded(pipeline: Pipeline) -> None:
    bad = session_payload(4, _id="../../etc/passwd")
    result = pipeline.client.send("save_session", bad)
    with pytest.raises(Exception, match="_id"):
        result.get(timeout=TIMEOUT)
    assert result.failed()
    failures = recorded_failures(pipeline, result.id)
    assert failures and failures[0]["errorCode"] == "VALIDATION"
    assert failures[0]["taskName"] == "trainlog.save_session"
    assert not list(pipeline.settings.export_dir.glob("*passwd*"))


def test_wrong_arguments_fail_at_once_as_validation(pipeline: Pipeline) -> None:
    """A producer sending by name gets no signature check from Celery: the worker names the
    bad argument, records the failure and does not retry."""
    result = pipeline.client.celery.send_task(
        "trainlog.save_session", args=[], kwargs={"sesion": session_payload(5)}
    )
    with pytest.raises(Exception, match="sesion"):
        result.get(timeout=TIMEOUT)
    failures = recorded_failures(pipeline, result.id)
    assert failures and failures[0]["errorCode"] == "VALIDATION"
    assert "unknown keyword argument(s): sesion" in failures[0]["error"]
    assert "'session'" in failures[0]["error"]  # and what it lacks


def test_arguments_nested_too_deep_fail_as_validation(pipeline: Pipeline) -> None:
    """A producer's argument nested hundreds of levels deep (the message still decodes) is a
    recorded VALIDATION failure, with the arguments left out of the record, for any job."""
    for job, depth in (("export_session_json", 100), ("ingest_activities", 600)):
        deep: list = []
        for _ in range(depth):  # 600: lost inside Celery's pool before the main-process check
            deep = [deep]
        with pytest.raises(ValidationError, match="levels deep"):
            pipeline.client.send(job, deep)  # trainlog's own client refuses before sending
        result = pipeline.client.celery.send_task(f"trainlog.{job}", args=[deep])
        with pytest.raises(Exception, match="levels deep"):
            result.get(timeout=TIMEOUT)
        failures = recorded_failures(pipeline, result.id)
        assert failures and failures[0]["errorCode"] == "VALIDATION"
        assert list(failures[0]["arguments"]) == ["omitted"]


def test_apply_migrations_and_seed_check(pipeline: Pipeline) -> None:
    migrated = pipeline.client.run("apply_migrations", timeout=TIMEOUT)
    assert migrated["sql"]["to"] == migrated["sql"]["from"] and migrated["sql"]["to"]
    assert isinstance(migrated["csv"], dict)
    preview = pipeline.client.run("check_seed_updates", timeout=TIMEOUT)
    assert set(preview) == {"exercise_catalog", "session_templates"}
    assert all(not d["applied"] and d["added"] == [] for d in preview.values())  # imported
    applied = pipeline.client.run("check_seed_updates", apply=True, timeout=TIMEOUT)
    assert all(d["applied"] is False for d in applied.values())  # nothing to change
    bad = pipeline.client.send("check_seed_updates", apply="yes")
    with pytest.raises(Exception, match="apply"):
        bad.get(timeout=TIMEOUT)


def test_the_worker_runs_the_configured_number_of_pool_processes(pipeline: Pipeline) -> None:
    """No -c given: the app's worker_concurrency, CPU cores + 1 unless set (a save waits on
    its fsyncs ~40% of its time)."""
    stats = pipeline.client.celery.control.inspect(timeout=10).stats() or {}
    pools = [worker["pool"]["max-concurrency"] for worker in stats.values()]
    assert pools == [pipeline.settings.worker_concurrency]
