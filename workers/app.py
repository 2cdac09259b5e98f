"""The Celery app. `celery -A workers.app worker|beat|flower` finds `app` here; it is built on
first access (PEP 562), so importing this module reads no environment."""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from typing import Any

from celery import Celery, signals
from celery.utils.log import get_logger

from storage.atomic import remove_abandoned_temps
from storage.errors import ConfigurationError, PersistenceError
from storage.export_folder import check_export_folder
from storage.placement import check_table_placement
from storage.settings import Settings, load_settings
from storage.stores import Stores
from workers.brokers.claims import recover_claims
from workers.brokers.filesystem import remove_abandoned_writes
from workers.config import celery_config, embedded_folders, prepare_embedded_broker
from workers.consumer import TrainlogConsumer
from workers.flower import require_credentials, starting_flower
from workers.jobs import register_jobs

logger = get_logger(__name__)
EXIT_REFUSED = 3  # a worker that refuses to start on a database it cannot use


class TrainlogCelery(Celery):
    """A Celery app that carries the trainlog settings its tasks read."""

    amqp_cls = "workers.summaries:SummarizingAMQP"

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__("trainlog", **kwargs)
        self.settings = settings
        self._stores: tuple[int, Stores] | None = None
        self.broker_lost_at: float | None = None  # set by the consumer, read by requests

    def process_stores(self) -> Stores:
        """This process's storage, schema at head: a forked pool child opens its own."""
        if self._stores is None or self._stores[0] != os.getpid():
            stores = Stores(self.settings)
            stores.prepare()
            self._stores = (os.getpid(), stores)
        return self._stores[1]


def create_app(settings: Settings | None = None) -> TrainlogCelery:
    settings = settings or load_settings()
    app = TrainlogCelery(settings, set_as_current=False)
    app.conf.update(celery_config(settings), worker_consumer=TrainlogConsumer)
    register_jobs(app)
    prepare_embedded_broker(settings)
    return app


@cache
def default_app() -> TrainlogCelery:
    return create_app(load_settings())


def __getattr__(name: str) -> Any:
    """`celery -A workers.app ...` (and Flower) find the app here; a setting that cannot be
    used ends the command with its error naming the variable, not a traceback."""
    if name == "app":
        try:
            app = default_app()
        except ConfigurationError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        if starting_flower(sys.argv):
            require_credentials(app.settings)
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@signals.celeryd_after_setup.connect
def _remove_abandoned_temps(instance: Any = None, **_: Any) -> None:
    """Temp files of writers killed before their rename (an export, a CSV file) stay behind:
    those older than the hard time limit, which no job outlives, go at start-up."""
    settings = getattr(getattr(instance, "app", None), "settings", None)
    if not isinstance(settings, Settings):
        return
    grace = settings.task_time_limit
    removed = remove_abandoned_temps(settings.export_dir, older_than=grace)
    removed += remove_abandoned_temps(settings.data_dir, older_than=grace, recursive=True)
    if removed:
        logger.warning("removed %d temp file(s) that writers killed mid-write left", removed)


@signals.worker_init.connect
def _refuse_what_it_cannot_use(sender: Any = None, **_: Any) -> None:
    """A worker on a PostgreSQL database whose schema is not at the heads would fail every
    job, and one with an export folder of its own, or tables placed otherwise than the other
    workers', would split the data: it refuses to start instead, saying what to do."""
    settings = getattr(getattr(sender, "app", None), "settings", None)
    if not isinstance(settings, Settings):
        return
    stores = Stores(settings)
    try:
        stores.prepare()
        check_export_folder(stores)
        check_table_placement(stores)
    except PersistenceError as error:
        print(f"error: the worker cannot start: {error}", file=sys.stderr)  # before logging
        raise SystemExit(EXIT_REFUSED) from None
    finally:
        stores.close()


@signals.worker_init.connect
def _clean_embedded_broker(sender: Any = None, **_: Any) -> None:
    """Stale bindings and control messages of the filesystem broker are replayed at start-up
    (a stopped Flower's queue keeps filling): clear them before the worker consumes, with the
    half-written files of producers killed mid-send."""
    settings = _embedded_settings(sender)
    if settings is not None:
        folders = embedded_folders(settings)
        shutil.rmtree(folders["control"], ignore_errors=True)
        folders["control"].mkdir(parents=True, exist_ok=True)
        remove_abandoned_writes(folders["queue"])


@signals.celeryd_after_setup.connect
def _recover_claims(instance: Any = None, **_: Any) -> None:
    """Put back the jobs that workers killed mid-run held (their claims), before this worker
    consumes; here rather than at worker_init so that the count reaches the log."""
    settings = _embedded_settings(instance)
    if settings is not None:
        folders = embedded_folders(settings)
        restored = recover_claims(folders["processed"], folders["queue"])
        if restored:
            logger.warning(
                "put back %d job(s) that a worker which stopped without finishing them held",
                restored,
            )


def _embedded_settings(worker: Any) -> Settings | None:
    settings = getattr(getattr(worker, "app", None), "settings", None)
    if isinstance(settings, Settings) and settings.broker_is_embedded:
        return settings
    return None
