"""The Celery app. `celery -A workers.app worker|beat|flower` finds `app` here; it is built on
first access (PEP 562), so importing this module reads no environment."""

from __future__ import annotations

import shutil
from functools import cache
from typing import Any

from celery import Celery, signals

from storage.settings import Settings, load_settings
from workers.brokers.filesystem import remove_abandoned_writes
from workers.config import celery_config, embedded_folders, prepare_embedded_broker


class TrainlogCelery(Celery):
    """A Celery app that carries the trainlog settings its tasks read."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__("trainlog", **kwargs)
        self.settings = settings


def create_app(settings: Settings | None = None) -> TrainlogCelery:
    settings = settings or load_settings()
    import tasks.jobs  # noqa: F401 - registers the trainlog.* tasks (shared_task)

    app = TrainlogCelery(settings, set_as_current=False)
    app.conf.update(celery_config(settings))
    prepare_embedded_broker(settings)
    return app


@cache
def default_app() -> TrainlogCelery:
    return create_app(load_settings())


def __getattr__(name: str) -> Any:
    if name == "app":
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@signals.worker_init.connect
def _clean_embedded_broker(sender: Any = None, **_: Any) -> None:
    """Stale bindings and control messages of the filesystem broker are replayed at start-up
    (a stopped Flower's queue keeps filling): clear them before the worker consumes, with the
    half-written files of producers killed mid-send."""
    app = getattr(sender, "app", None)
    settings = getattr(app, "settings", None)
    if isinstance(settings, Settings) and settings.broker_is_embedded:
        folders = embedded_folders(settings)
        for name in ("control", "processed"):
            shutil.rmtree(folders[name], ignore_errors=True)
            folders[name].mkdir(parents=True, exist_ok=True)
        remove_abandoned_writes(folders["queue"])
