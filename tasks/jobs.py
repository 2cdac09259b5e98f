"""The jobs as plain functions: a JobContext and the message's arguments in, a JSON summary
out. tasks/registry.py gives each its public name and queue; workers/ runs them on Celery."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from storage.coordination import Coordination, Taken
from storage.errors import PersistenceError
from storage.sql.prepared import FetchedRow
from tasks import maintenance, reconcile, sessions
from tasks import rows as row_jobs
from tasks.context import JobContext
from tasks.metrics import recompute

log = logging.getLogger(__name__)


def queue_recompute(
    context: JobContext,
    since_by_athlete: dict[str, str],
    marks: dict[str, FetchedRow] | None = None,
) -> None:
    """Mark each athlete pending from its date; the first mark of a burst schedules one
    `recompute_pending` job `recompute_delay` seconds later for every athlete marked by then.
    `marks`: athletes' pending marks the caller read after its change (a read fewer)."""
    coordination = context.stores.coordination
    for athlete_id, since in since_by_athlete.items():
        known = (marks or {}).get(athlete_id)
        if coordination.mark_pending(athlete_id, recompute.parse_since(since), marks=known):
            try:
                context.enqueue(recompute_pending, countdown=context.settings.recompute_delay)
            except PersistenceError:  # not sent: this job's next run marks and sends again
                coordination.forget_flush()
                raise


def save_session(context: JobContext, session: Any) -> dict[str, Any]:
    """Validate a workout session, store it in SQL and its JSON file."""
    saved = sessions.save_session(context.stores, session)
    queue_recompute(context, sessions.iso_dates(saved.recompute_from), saved.marks)
    return saved.result()


def ingest_activities(context: JobContext, activities: Any) -> dict[str, Any]:
    """Upsert activity rows; their athletes' metrics are recomputed from the earliest day."""
    result = row_jobs.ingest_activities(context.stores, activities)
    queue_recompute(context, result["recomputeFrom"])
    return result


def upsert_rows(context: JobContext, table: Any, rows: Any) -> dict[str, Any]:
    """Upsert rows into any table a producer may write."""
    result = row_jobs.upsert_rows(context.stores, table, rows)
    queue_recompute(context, result.pop("recomputeFrom"))
    return result


def export_session_json(context: JobContext, session_id: Any) -> dict[str, Any]:
    """Write a stored session's JSON file again."""
    return sessions.export_session_json(context.stores, session_id)


def import_sessions(context: JobContext, folder: Any) -> dict[str, Any]:
    """Import session JSON files from a folder inside the import directory."""
    result = sessions.import_sessions(context.stores, folder)
    queue_recompute(context, result.pop("recomputeFrom"))
    return result


def reconcile_exports(context: JobContext) -> dict[str, Any]:
    """Repair missing or stale session JSON files from SQL, and the reverse."""
    result = reconcile.reconcile_exports(context.stores)
    queue_recompute(context, result.pop("recomputeFrom"))
    return result


def recompute_daily_metrics(
    context: JobContext, athlete_id: Any, since: Any = None
) -> dict[str, Any]:
    """An athlete's activity loads and daily metrics from a date (None: all), then weekly."""
    athlete = recompute.check_athlete(athlete_id)
    start = recompute.parse_since(since)
    coordination = context.stores.coordination
    taken = coordination.take_pending(athlete)  # before reading the data
    if athlete in taken.since:
        marked = taken.since[athlete]
        start = None if start is None or marked is None else min(start, marked)
    with _giving_back(coordination, taken):
        summary = recompute.recompute_daily(context.stores, {athlete: start})[athlete]
        if summary["from"] is not None:
            weeks_from = recompute.weekly_since(start, summary["from"])
            context.enqueue(
                recompute_weekly_metrics, athlete, weeks_from and weeks_from.isoformat()
            )
    coordination.clear(taken)  # only now: a job that fails or is killed leaves the mark
    return {"athleteId": athlete, **summary}


def recompute_weekly_metrics(
    context: JobContext, athlete_id: Any, since: Any = None
) -> dict[str, Any]:
    """An athlete's weekly metrics from the week holding a date (None: all weeks)."""
    athlete = recompute.check_athlete(athlete_id)
    result = recompute.recompute_weekly(context.stores, {athlete: recompute.parse_since(since)})
    return {"athleteId": athlete, **result[athlete]}


def recompute_pending(context: JobContext) -> dict[str, Any]:
    """Daily then weekly for every athlete marked pending, together; the marks go once it
    is done, so a run that fails or is killed leaves them for the next."""
    coordination = context.stores.coordination
    taken = coordination.take_all_pending()
    with _giving_back(coordination, taken):
        result = recompute.recompute_many(context.stores, taken.since)
    coordination.clear(taken)
    return result


@contextmanager
def _giving_back(coordination: Coordination, taken: Taken) -> Iterator[None]:
    """A recompute that fails gives its marks back for its retry; if that fails too (the
    database went away), they are taken again once they look abandoned."""
    try:
        yield
    except BaseException:
        try:
            coordination.release(taken)
        except Exception as error:  # the recompute's own error is the one to raise
            log.warning("could not give back pending marks: %s", error)
        raise


def nightly_rollup(context: JobContext) -> dict[str, Any]:
    """Recompute every athlete changed since the last rollup."""
    return recompute.nightly_rollup(context.stores)


def apply_migrations(context: JobContext) -> dict[str, Any]:
    """SQL schema to head, CSV headers to their definitions."""
    return maintenance.apply_migrations(context.stores)


def check_seed_updates(context: JobContext, apply: Any = False) -> dict[str, Any]:
    """Compare the bundled seed data with SQL; apply the update when asked."""
    actor = f"task {context.task_id}"
    return maintenance.check_seed_updates(context.stores, apply, actor=actor)


def ping(context: JobContext) -> dict[str, Any]:
    """Diagnostic no-op: proves a worker takes jobs (and is the benchmarks' baseline)."""
    return {"pong": True, "worker": context.worker}
