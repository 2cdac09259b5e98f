"""The job registry is the one list of jobs: docs/jobs.md, the Celery app, the routes, the
beat schedule and the client all agree with it."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery.app.trace import get_log_policy, log_policy_expected, log_policy_unexpected

from beat_schedule import build_beat_schedule
from storage.errors import AlreadyExists, Conflict, NotFound, Unavailable, ValidationError
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


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValidationError("VALIDATION: session userId: Field required"), True),
        (NotFound("session 1 does not exist"), True),
        (Conflict("version 2 expected, 3 stored"), True),
        (AlreadyExists("duplicate key value violates unique constraint"), False),  # a race
        (Unavailable("database unavailable"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_only_errors_in_what_the_caller_sent_are_logged_as_expected(
    settings: Settings, error: Exception, expected: bool
) -> None:
    """Celery's log policy for each job: "raised expected" (INFO, no traceback) or "raised
    unexpected" (ERROR with its traceback, an operator's alarm)."""
    task = create_app(settings).tasks["trainlog.save_session"]
    policy = get_log_policy(task, SimpleNamespace(internal=False), error)
    assert (policy is log_policy_expected) is expected
    assert (policy is log_policy_unexpected) is not expected
