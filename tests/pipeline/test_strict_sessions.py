"""Session fields read strictly, through a real worker: a date given as a number, an _id in
a non-canonical form and a date outside the years in UTC are VALIDATION, not saved with a
guess; and temp files a killed writer left are gone after the next worker start."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from tests.factories import session_payload
from tests.pipeline.conftest import Pipeline, make_settings
from workers.process import WorkerProcess

ID = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"date": 1_700_000_000}, "session date: must be an ISO-8601 date and time, as text"),
        ({"_id": "{" + ID + "}"}, "session _id: must be a UUID"),
        ({"_id": "urn:uuid:" + ID}, "session _id: must be a UUID"),
        ({"_id": ID.replace("-", "")}, "session _id: must be a UUID"),
        ({"date": "1900-01-01T00:00+14:00"}, "in UTC too), not 1899"),
    ],
    ids=["epoch date", "braces", "urn", "bare hex", "1899 in UTC"],
)
def test_a_loosely_typed_session_is_refused(
    pipeline: Pipeline, changes: dict[str, object], words: str
) -> None:
    payload = {**session_payload(71, _id=ID), **changes}
    sent = pipeline.client.send("save_session", payload)
    outcome = pipeline.client.wait(sent, 60, propagate=False)
    assert sent.state == "FAILURE" and str(outcome).startswith("VALIDATION:"), outcome
    assert words in str(outcome)
    assert pipeline.stores.sessions.get(ID) is None
    line, after = failure_logged(pipeline.worker, sent.id)
    assert "INFO" in line and "raised expected: ValidationError" in line, line
    assert not after.startswith("Traceback"), after  # an operator's alarm: not for this


def failure_logged(worker: WorkerProcess, task_id: str, timeout: float = 15) -> tuple[str, str]:
    """The worker's log line of the task's failure and the line after it (the pool process
    logs it just after storing the result the client waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = worker.log_text().splitlines()
        for at, line in enumerate(lines):
            if task_id in line and " raised " in line:
                return line, lines[at + 1] if at + 1 < len(lines) else ""
        assert time.monotonic() < deadline, f"no failure of {task_id} in the worker's log"
        time.sleep(0.1)


def test_an_upper_case_id_is_saved_under_its_canonical_form(pipeline: Pipeline) -> None:
    upper = str(uuid.uuid4()).upper()
    saved = pipeline.client.run("save_session", session_payload(72, _id=upper), timeout=60)
    assert saved["sessionId"] == upper.lower()
    assert pipeline.stores.sessions.get(upper.lower()) is not None


def test_temp_files_of_killed_writers_are_removed_at_start_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", None)
    settings.export_dir.mkdir(parents=True)
    month = settings.data_dir / "activities"
    month.mkdir(parents=True)
    orphans = [
        settings.export_dir / ".training_session_2026_03_01_abcd1234.json.0a1b2c.tmp",
        month / ".2026-03.x1y2z3.tmp",
    ]
    fresh = settings.export_dir / ".training_session_2026_03_02_abcd1234.json.3d4e5f.tmp"
    old = time.time() - settings.task_time_limit - 60
    for path in [*orphans, fresh]:
        path.write_text("half a file")
    for path in orphans:
        os.utime(path, (old, old))
    with WorkerProcess(settings, name="temps") as worker:
        assert "removed 2 temp file(s)" in worker.log_text()
    assert not any(path.exists() for path in orphans)
    assert fresh.exists()  # perhaps being written by a worker on another host
