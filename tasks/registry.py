"""Every job in one table: its stable name, its queue, its plain function and whether
producers may send it. Celery's tasks, the routes, the beat schedule's queues, the client's
job list and `trainlog enqueue` all read it; docs/jobs.md documents it (a test compares)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.errors import ValidationError
from tasks import jobs

PREFIX = "trainlog."
QUEUES = ("default", "metrics", "maintenance")


@dataclass(frozen=True)
class Job:
    name: str  # the task name producers send
    queue: str
    run: Callable[..., dict[str, Any]]  # (context, *arguments) -> JSON summary
    public: bool = True  # False: queued by the jobs themselves, not by producers

    @property
    def short(self) -> str:
        return self.name.removeprefix(PREFIX)

    @property
    def arguments(self) -> tuple[str, ...]:
        """The message's argument names, in order (the function's, after the context)."""
        return tuple(inspect.signature(self.run).parameters)[1:]


JOBS: tuple[Job, ...] = (
    Job("trainlog.save_session", "default", jobs.save_session),
    Job("trainlog.ingest_activities", "default", jobs.ingest_activities),
    Job("trainlog.recompute_daily_metrics", "metrics", jobs.recompute_daily_metrics),
    Job("trainlog.recompute_weekly_metrics", "metrics", jobs.recompute_weekly_metrics),
    Job("trainlog.nightly_rollup", "metrics", jobs.nightly_rollup),
    Job("trainlog.export_session_json", "default", jobs.export_session_json),
    Job("trainlog.import_sessions", "maintenance", jobs.import_sessions),
    Job("trainlog.reconcile_exports", "maintenance", jobs.reconcile_exports),
    Job("trainlog.apply_migrations", "maintenance", jobs.apply_migrations),
    Job("trainlog.check_seed_updates", "maintenance", jobs.check_seed_updates),
    Job("trainlog.upsert_rows", "default", jobs.upsert_rows),
    Job("trainlog.ping", "default", jobs.ping),
    Job("trainlog.recompute_pending", "metrics", jobs.recompute_pending, public=False),
)
BY_NAME = {job.name: job for job in JOBS}
BY_FUNCTION = {job.run: job for job in JOBS}
PUBLIC = tuple(job.short for job in JOBS if job.public)


def find_job(name: str) -> Job:
    """'save_session', 'save-session' or 'trainlog.save_session' -> its public job; anything
    else (an internal job included) is a VALIDATION error listing the public ones."""
    full = PREFIX + name.removeprefix(PREFIX).replace("-", "_")
    job = BY_NAME.get(full)
    if job is None or not job.public:
        raise ValidationError(f"unknown job {name!r}; jobs: {', '.join(PUBLIC)}", field="job")
    return job


def name_of(run: Callable[..., Any]) -> str:
    """The task name of a job's plain function (how a job queues a follow-up)."""
    return BY_FUNCTION[run].name


def queue_of(name: str) -> str:
    return BY_NAME[name].queue
