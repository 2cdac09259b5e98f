"""The public jobs, registered under their stable `trainlog.*` names (see docs/jobs.md).
Each is a thin wrapper: arguments in, plain function, JSON summary out."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from storage.errors import PersistenceError
from tasks import maintenance, reconcile, sessions
from tasks import rows as row_jobs
from tasks.base import TrainlogTask
from tasks.metrics import pending, recompute

RECOMPUTE_PENDING = "trainlog.recompute_pending"


def _queue_recompute(task: TrainlogTask, since_by_athlete: dict[str, str]) -> None:
    """Mark each athlete pending from its date; the first mark of a burst schedules one
    `recompute_pending` job `recompute_delay` seconds later for every athlete marked by then."""
    for athlete_id, since in since_by_athlete.items():
        if pending.mark_pending(task.stores, athlete_id, recompute.parse_since(since)):
            try:
                task.enqueue(RECOMPUTE_PENDING, countdown=task.settings.recompute_delay)
            except PersistenceError:  # not sent: this job's next run marks and sends again
                pending.forget_flush(task.stores)
                raise


@shared_task(bind=True, base=TrainlogTask, name="trainlog.save_session")
def save_session(self: TrainlogTask, session: Any) -> dict[str, Any]:
    saved = sessions.save_session(self.stores, session)
    _queue_recompute(self, sessions.iso_dates(saved.recompute_from))
    return saved.result()


@shared_task(bind=True, base=TrainlogTask, name="trainlog.ingest_activities")
def ingest_activities(self: TrainlogTask, activities: Any) -> dict[str, Any]:
    result = row_jobs.ingest_activities(self.stores, activities)
    _queue_recompute(self, result["recomputeFrom"])
    return result


@shared_task(bind=True, base=TrainlogTask, name="trainlog.upsert_rows")
def upsert_rows(self: TrainlogTask, table: Any, rows: Any) -> dict[str, Any]:
    result = row_jobs.upsert_rows(self.stores, table, rows)
    _queue_recompute(self, result.pop("recomputeFrom"))
    return result


@shared_task(bind=True, base=TrainlogTask, name="trainlog.export_session_json")
def export_session_json(self: TrainlogTask, session_id: Any) -> dict[str, Any]:
    return sessions.export_session_json(self.stores, session_id)


@shared_task(bind=True, base=TrainlogTask, name="trainlog.import_sessions")
def import_sessions(self: TrainlogTask, folder: Any) -> dict[str, Any]:
    result = sessions.import_sessions(self.stores, folder)
    _queue_recompute(self, result.pop("recomputeFrom"))
    return result


@shared_task(bind=True, base=TrainlogTask, name="trainlog.reconcile_exports")
def reconcile_exports(self: TrainlogTask) -> dict[str, Any]:
    result = reconcile.reconcile_exports(self.stores)
    _queue_recompute(self, result.pop("recomputeFrom"))
    return result


@shared_task(bind=True, base=TrainlogTask, name="trainlog.recompute_daily_metrics")
def recompute_daily_metrics(
    self: TrainlogTask, athlete_id: Any, since: Any = None
) -> dict[str, Any]:
    athlete = recompute.check_athlete(athlete_id)
    start = recompute.parse_since(since)
    had_marker, marked = pending.take_pending(self.stores, athlete)  # before reading the data
    if had_marker:
        start = None if start is None or marked is None else min(start, marked)
    try:
        result = recompute.recompute_daily(self.stores, {athlete: start})
        summary = result[athlete]
        if summary["from"] is not None:
            self.enqueue("trainlog.recompute_weekly_metrics", athlete, summary["from"])
    except BaseException:
        if had_marker:  # the marker's earlier date is not in this job's arguments: keep it
            pending.restore_pending(self.stores, {athlete: start})
        raise
    return {"athleteId": athlete, **summary}


@shared_task(bind=True, base=TrainlogTask, name="trainlog.recompute_weekly_metrics")
def recompute_weekly_metrics(
    self: TrainlogTask, athlete_id: Any, since: Any = None
) -> dict[str, Any]:
    athlete = recompute.check_athlete(athlete_id)
    result = recompute.recompute_weekly(self.stores, {athlete: recompute.parse_since(since)})
    return {"athleteId": athlete, **result[athlete]}


@shared_task(bind=True, base=TrainlogTask, name=RECOMPUTE_PENDING)
def recompute_pending(self: TrainlogTask) -> dict[str, Any]:
    """Follow-up of changes (not for producers): daily then weekly for every athlete marked
    pending, together. Taken markers are put back if the recompute fails."""
    since = pending.take_all_pending(self.stores)
    try:
        return recompute.recompute_many(self.stores, since)
    except BaseException:
        pending.restore_pending(self.stores, since)
        raise


@shared_task(bind=True, base=TrainlogTask, name="trainlog.nightly_rollup")
def nightly_rollup(self: TrainlogTask) -> dict[str, Any]:
    return recompute.nightly_rollup(self.stores)


@shared_task(bind=True, base=TrainlogTask, name="trainlog.apply_migrations")
def apply_migrations(self: TrainlogTask) -> dict[str, Any]:
    return maintenance.apply_migrations(self.stores)


@shared_task(bind=True, base=TrainlogTask, name="trainlog.check_seed_updates")
def check_seed_updates(self: TrainlogTask, apply: Any = False) -> dict[str, Any]:
    return maintenance.check_seed_updates(self.stores, apply, actor=f"task {self.request.id}")


@shared_task(bind=True, base=TrainlogTask, name="trainlog.ping")
def ping(self: TrainlogTask) -> dict[str, Any]:
    """Diagnostic no-op: proves a worker takes jobs (and is the benchmarks' baseline)."""
    return {"pong": True, "worker": self.request.hostname}
