"""Celery's own command line against a running trainlog worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from storage.settings import settings_env
from tests.pipeline.conftest import Pipeline

JOBS_DOC = Path(__file__).parents[2] / "docs" / "jobs.md"


def documented_jobs() -> set[str]:
    """The task names in docs/jobs.md's table of public jobs."""
    return set(re.findall(r"^\| `(trainlog\.\w+)` \|", JOBS_DOC.read_text(), re.MULTILINE))


def celery(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(pipeline.settings)}
    command = [sys.executable, "-m", "celery", "-A", "workers.app", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_inspect_registered_lists_every_public_job(redis_pipeline: Pipeline) -> None:
    public = documented_jobs()
    assert len(public) >= 12
    done = celery(redis_pipeline, "inspect", "registered", "--timeout", "10")
    assert done.returncode == 0, done.stderr
    registered = set(re.findall(r"\* (trainlog\.\w+)", done.stdout))
    assert public <= registered, f"not registered: {sorted(public - registered)}"


def test_celery_call_runs_a_job_by_name(redis_pipeline: Pipeline) -> None:
    done = celery(redis_pipeline, "call", "trainlog.ping", "--queue", "default")
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.strip()
    assert redis_pipeline.client.celery.AsyncResult(task_id).get(timeout=60) is not None
