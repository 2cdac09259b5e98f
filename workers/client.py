"""Producer side for Python services: send trainlog jobs by their public names.

Services that do not install trainlog need only Celery and the broker URL:
    Celery(broker=URL, backend=URL).send_task("trainlog.save_session", args=[payload])
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.result import AsyncResult

from storage.errors import ValidationError
from storage.settings import Settings
from workers.config import ROUTES, broker_and_backend, celery_config

RESULT_POLL_SECONDS = 0.05

JOBS = (
    "save_session",
    "ingest_activities",
    "recompute_daily_metrics",
    "recompute_weekly_metrics",
    "nightly_rollup",
    "export_session_json",
    "import_sessions",
    "reconcile_exports",
    "apply_migrations",
    "check_seed_updates",
    "upsert_rows",
    "ping",
)


def job_name(job: str) -> str:
    """'save_session' or 'trainlog.save_session' -> the public task name."""
    short = job.removeprefix("trainlog.").replace("-", "_")
    if short not in JOBS:
        raise ValidationError(f"unknown job {job!r}; jobs: {', '.join(JOBS)}", field="job")
    return f"trainlog.{short}"


class TrainlogClient:
    """Enqueue jobs without importing the task code; results come back as JSON summaries."""

    def __init__(self, settings: Settings) -> None:
        broker, backend = broker_and_backend(settings)
        self.celery = Celery(
            "trainlog-client", broker=broker, backend=backend, set_as_current=False
        )
        config = celery_config(settings)
        self.celery.conf.update({k: v for k, v in config.items() if not k.startswith("beat")})

    def send(self, job: str, *args: Any, **kwargs: Any) -> AsyncResult:
        name = job_name(job)
        queue = ROUTES.get(name, "default")
        return self.celery.send_task(name, args=list(args), kwargs=kwargs, queue=queue)

    def run(self, job: str, *args: Any, timeout: float = 300, **kwargs: Any) -> Any:
        """Send and wait for the result (raises the job's error on failure)."""
        # interval: how often a polling backend (SQLite, embedded) is asked; default 0.5 s
        return self.send(job, *args, **kwargs).get(timeout=timeout, interval=RESULT_POLL_SECONDS)

    def close(self) -> None:
        self.celery.close()
