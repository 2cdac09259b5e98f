"""The periodic jobs, in one place. Run exactly one beat per deployment (see README)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from storage.settings import Settings
from tasks.registry import queue_of

HOUR = 3600


def build_beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Nightly rollup, daily seed check, hourly export reconciliation; each expires so that
    runs missed while workers were down do not pile up and run back to back."""
    hour = settings.nightly_rollup_hour
    return {
        "nightly-rollup": _periodic(
            "trainlog.nightly_rollup", crontab(hour=hour, minute=0), expires=6 * HOUR
        ),
        "daily-seed-check": _periodic(
            "trainlog.check_seed_updates",
            crontab(hour=(hour + 1) % 24, minute=30),
            expires=12 * HOUR,
            kwargs={"apply": False},
        ),
        "hourly-export-reconciliation": _periodic(
            "trainlog.reconcile_exports", crontab(minute=15), expires=HOUR - 60
        ),
    }


def _periodic(name: str, schedule: crontab, expires: float, **extra: Any) -> dict[str, Any]:
    """A beat entry sending job `name` to its queue (the registry's)."""
    options = {"queue": queue_of(name), "expires": expires}
    return {"task": name, "schedule": schedule, "options": options, **extra}
