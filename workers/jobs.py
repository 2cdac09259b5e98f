"""The registry's jobs as Celery tasks of one app: each runs its plain function with the task
as its JobContext, under the message's arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from celery import Celery

from tasks.registry import JOBS, Job
from workers.task import TrainlogTask


def register_jobs(app: Celery) -> None:
    for job in JOBS:
        app.task(bind=True, base=TrainlogTask, name=job.name, shared=False)(_runner(job))


def _runner(job: Job) -> Callable[..., dict[str, Any]]:
    def run(task: TrainlogTask, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return job.run(task, *args, **kwargs)

    # Celery and the argument check read the job's own parameters (the context is the task)
    run.__signature__ = inspect.signature(job.run)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = job.run.__name__
    run.__doc__, run.__module__ = job.run.__doc__, job.run.__module__
    return run
