"""The periodic jobs, in one place. Run exactly one beat per deployment (see README)."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from storage.settings import Settings

HOUR = 3600


def build_beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """Nightly rollup, daily seed check, hourly export reconciliation; each expires so that
    runs missed while workers were down do not pile up and run back to back."""
    hour = settings.nightly_rollup_hour
    return {
        "nightly-rollup": {
            "task": "trainlog.nightly_rollup",
            "schedule": crontab(hour=hour, minute=0),
            "options": {"queue": "metrics", "expires": 6 * HOUR},
        },
        "daily-seed-check": {
            "task": "trainlog.check_seed_updates",
            "schedule": crontab(hour=(hour + 1) % 24, minute=30),
            "kwargs": {"apply": False},
            "options": {"queue": "maintenance", "expires": 12 * HOUR},
        },
        "hourly-export-reconciliation": {
            "task": "trainlog.reconcile_exports",
            "schedule": crontab(minute=15),
            "options": {"queue": "maintenance", "expires": HOUR - 60},
        },
    }
