"""Saves that race or collide, through a real worker with several pool processes: a session
refused with CONFLICT leaves nothing behind, and two saves of one session on two dates
leave one file, the one its SQL row names."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from storage.sessions.exports import export_path
from storage.sessions.model import parse_session
from tests.factories import session_payload
from tests.pipeline.conftest import Pipeline, make_settings, storage_and_client, wait_for
from tests.services import redis_database
from workers.process import WorkerProcess


def test_a_save_refused_with_conflict_leaves_no_row_file_or_activity(pipeline: Pipeline) -> None:
    first = session_payload(21, _id=str(uuid.uuid4()), userId="race-owner")
    twin = {**first, "_id": first["_id"][:8] + str(uuid.uuid4())[8:], "userId": "race-twin"}
    assert pipeline.client.run("save_session", first, timeout=60)["sessionId"] == first["_id"]
    refused = pipeline.client.send("save_session", twin)
    outcome = pipeline.client.wait(refused, 60, propagate=False)
    assert refused.state == "FAILURE" and str(outcome).startswith("CONFLICT:")
    assert pipeline.stores.sessions.get(twin["_id"]) is None
    pipeline.client.run("recompute_daily_metrics", "race-twin", timeout=60)
    activities = pipeline.stores.repository("activities").read_frame()
    assert f"session-{twin['_id']}" not in set(activities["activityId"])
    reconciled = pipeline.client.run("reconcile_exports", timeout=60)
    assert all(entry["sessionId"] != twin["_id"] for entry in reconciled["repaired"])


def test_two_saves_of_one_session_on_two_dates_leave_one_file(pipeline: Pipeline) -> None:
    pairs = []
    for n in range(40):
        payload = session_payload(n, _id=str(uuid.uuid4()), userId=f"race-{n % 4}")
        early, late = (
            {**payload, "date": "2026-04-03T08:00:00Z"},
            {**payload, "date": "2026-04-17T08:00:00Z"},
        )
        pairs.append((pipeline.client.send("save_session", early), payload["_id"]))
        pairs.append((pipeline.client.send("save_session", late), payload["_id"]))
    for result, _ in pairs:
        pipeline.client.wait(result, 120)
    folder = pipeline.settings.export_dir
    for _, session_id in pairs[::2]:
        files = [
            path
            for path in folder.glob(f"training_session_*_{session_id[:8]}.json")
            if json.loads(path.read_text())["_id"] == session_id
        ]
        stored = pipeline.stores.sessions.load(session_id)
        assert stored is not None and len(files) == 1, [path.name for path in files]
        assert files[0].name == f"training_session_{stored.date:%Y_%m_%d}_{session_id[:8]}.json"
    assert wait_for(lambda: pipeline.worker.process.poll() is None)  # type: ignore[union-attr]


def test_a_save_cut_by_its_soft_time_limit_is_retried_and_completed(tmp_path: Path) -> None:
    """The limit fires while the save waits for its session's lock (held here): the job is
    DEADLINE_EXCEEDED, retried, and saved whole (row and file) once the lock is free."""
    with redis_database() as url:
        settings = make_settings(
            tmp_path / "home",
            url,
            task_soft_time_limit=1,
            task_time_limit=30,
            lock_timeout=20.0,
            retry_backoff_max=1,
        )
        with storage_and_client(settings) as (stores, client):
            payload = session_payload(31, _id=str(uuid.uuid4()))
            with WorkerProcess(settings, name="soft-limit"):
                path = export_path(settings.export_dir, parse_session(payload))
                with stores.sessions.holding(payload["_id"], str(path)):
                    sent = client.send("save_session", payload)
                    time.sleep(2.5)  # past the soft limit of the first run, and maybe a retry's
                saved = client.wait(sent, 60)
            assert saved["jsonPath"] == str(path) and path.exists()
            assert stores.sessions.get(payload["_id"]) is not None
            log = (settings.home / "worker-soft-limit.log").read_text()
            assert "transient DEADLINE_EXCEEDED" in log and "soft time limit" in log
