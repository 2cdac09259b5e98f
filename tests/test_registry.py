"""The job registry is the one list of jobs: docs/jobs.md, the Celery app, the routes, the
beat schedule and the client all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from beat_schedule import build_beat_schedule
from storage.errors import ValidationError
from storage.settings import Settings
from tasks.registry import BY_NAME, JOBS, find_job
from workers.app import create_app
from workers.config import celery_config

DOC = Path(__file__).parents[1] / "docs" / "jobs.md"
ROW = re.compile(r"^\| `(trainlog\.\w+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (queue, argument names) from the table of public jobs."""
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, queue, arguments in ROW.findall(DOC.read_text()):
        top_level = re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)", "", arguments)  # drop asides
        names = tuple(re.findall(r"`(\w+)(?:=[^`]*)?`", top_level))
        table[name] = (queue, names)
    return table


def test_docs_list_every_public_job_with_its_queue_and_arguments() -> None:
    registry = {job.name: (job.queue, job.arguments) for job in JOBS if job.public}
    assert documented() == registry


def test_internal_jobs_are_described_but_not_enqueueable() -> None:
    internal = [job for job in JOBS if not job.public]
    assert internal and all(job.name in DOC.read_text() for job in internal)
    for job in internal:
        with pytest.raises(ValidationError, match="unknown job"):
            find_job(job.short)


def test_the_app_routes_and_schedule_follow_the_registry(settings: Settings) -> None:
    app = create_app(settings)
    assert {name for name in app.tasks if name.startswith("trainlog.")} == set(BY_NAME)
    routes = celery_config(settings)["task_routes"]
    assert {name: route["queue"] for name, route in routes.items()} == {
        job.name: job.queue for job in JOBS
    }
    for entry in build_beat_schedule(settings).values():
        assert entry["options"]["queue"] == BY_NAME[entry["task"]].queue


def test_a_job_is_found_by_any_of_its_spellings() -> None:
    for spelling in ("save_session", "save-session", "trainlog.save_session"):
        assert find_job(spelling).name == "trainlog.save_session"
    with pytest.raises(ValidationError, match="jobs: save_session, ingest_activities"):
        find_job("save_sessions")
