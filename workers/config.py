"""Celery configuration from the settings: brokers, reliability, queues, routes, events."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from kombu import Queue

from beat_schedule import build_beat_schedule
from storage.errors import ConfigurationError
from storage.options import shown_url
from storage.settings import Settings
from storage.sql.engine import private_sqlite_file
from tasks.registry import JOBS, QUEUES
from workers.brokers.filesystem import REJECTED_FOLDER

# A producer that knows nothing of our routing (plain Celery().send_task) sends to Celery's own
# default queue, "celery"; workers consume it too, so such jobs still run.
FOREIGN_DEFAULT_QUEUE = "celery"
CONSUMED_QUEUES = (*QUEUES, FOREIGN_DEFAULT_QUEUE)
ROUTES = {job.name: job.queue for job in JOBS}
EMBEDDED_BROKER = "filesystem://localhost//"  # a host named: kombu warns when there is none
EMBEDDED_POLL_SECONDS = 0.1  # filesystem broker: ~100 ms latency; each poll lists the folder
REDIS_RESTORE_SWEEP_SECONDS = 5  # how often a worker looks for unacked messages to restore
REDIS_IDLE_POLL_SECONDS = 0.05  # longest pause of an idle worker between two pops
# kombu's Redis transport with an atomic pop: a SIGKILLed worker cannot lose a taken message
REDIS_TRANSPORT = "workers.brokers.redis:Transport"
# kombu's filesystem transport with whole-file writes: a poll never reads half a message
FILESYSTEM_TRANSPORT = "workers.brokers.filesystem:Transport"
TRANSPORTS = {
    "redis": REDIS_TRANSPORT,
    "rediss": REDIS_TRANSPORT,
    "filesystem": FILESYSTEM_TRANSPORT,
}


def embedded_folders(settings: Settings) -> dict[str, Path]:
    root = settings.broker_folder
    return {
        "queue": root / "queue",
        "processed": root / "processed",
        "control": root / "control",
        "rejected": root / REJECTED_FOLDER,  # unreadable message files, kept for a look
    }


def prepare_embedded_broker(settings: Settings) -> None:
    """The folders the filesystem broker needs (its owner's only: messages hold the jobs'
    arguments, token rows too) and a private file for SQLite results; nothing for a Redis
    broker. Producers and workers both call it: either may run first."""
    if settings.broker_is_embedded:
        for folder in (settings.broker_folder, *embedded_folders(settings).values()):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                if folder == settings.broker_folder and folder.stat().st_mode & 0o077:
                    folder.chmod(0o700)
            except OSError as error:
                raise ConfigurationError(
                    f"cannot create the embedded broker's folder {folder}: {error.strerror} "
                    "(set TRAINLOG_HOME to a writable folder, or TRAINLOG_BROKER_URL)",
                    path=str(folder),
                ) from None
    _, backend = broker_and_backend(settings)
    if backend.startswith("db+sqlite:///"):
        path = Path(backend.removeprefix("db+sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"cannot create {path.parent} for the result backend: {error.strerror}",
                path=str(path.parent),
            ) from None
        private_sqlite_file(path)


def broker_and_backend(settings: Settings) -> tuple[str, str]:
    """Unset broker = embedded filesystem broker; unset backend = Redis for Redis, else SQLite.
    A broker or backend Celery has no transport for is a ConfigurationError naming it."""
    broker = settings.broker_url or EMBEDDED_BROKER
    if settings.result_backend:
        backend = settings.result_backend
    elif broker.startswith(("redis://", "rediss://")):
        backend = broker
    else:
        backend = f"db+sqlite:///{settings.home / 'results.sqlite'}"
    _check_schemes(broker, backend)
    query = broker.partition("?")[2].split("&")
    if broker.startswith(("redis://", "rediss://")) and any(
        pair.partition("=")[0] == "password" for pair in query
    ):
        raise ConfigurationError(  # kombu would hand redis-py the password twice
            f"TRAINLOG_BROKER_URL {shown_url(broker)}: put the Redis password in the URL's "
            "user part (redis://:PASSWORD@host:6379/0, percent-encoded), not in its query",
            field="broker_url",
        )
    return broker, backend


def _check_schemes(broker: str, backend: str) -> None:
    from celery.app.backends import BACKEND_ALIASES
    from kombu.transport import TRANSPORT_ALIASES

    scheme = broker.partition("://")[0].partition("+")[0]
    if scheme not in TRANSPORT_ALIASES:
        raise ConfigurationError(
            f"TRAINLOG_BROKER_URL {shown_url(broker)}: Celery has no broker {scheme!r} "
            "(redis://, rediss://, amqp://, filesystem:// ...)",
            field="broker_url",
        )
    kind = backend.partition("://")[0].partition("+")[0]
    if kind not in BACKEND_ALIASES:
        raise ConfigurationError(
            f"TRAINLOG_RESULT_BACKEND {shown_url(backend)}: Celery has no result backend "
            f"{kind!r} (redis://, rediss://, db+postgresql://, db+sqlite:// ...)",
            field="result_backend",
        )


def transport_options(settings: Settings, broker: str) -> dict[str, Any]:
    if broker.startswith("filesystem://"):
        folders = embedded_folders(settings)
        return {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
            "control_folder": str(folders["control"]),
            "rejected_folder": str(folders["rejected"]),
            "polling_interval": EMBEDDED_POLL_SECONDS,
        }
    if broker.startswith(("redis://", "rediss://")):
        # visibility_timeout > task_time_limit (enforced by load_settings): a running task is
        # never handed to a second worker; a killed worker's tasks come back after it.
        return {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": REDIS_RESTORE_SWEEP_SECONDS,
            "unacked_restore_throttle": 1,
            "idle_poll_interval": REDIS_IDLE_POLL_SECONDS,
        }
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    broker, backend = broker_and_backend(settings)
    options = transport_options(settings, broker)
    config: dict[str, Any] = {
        "broker_url": broker,
        "result_backend": backend,
        "broker_transport_options": options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": settings.worker_concurrency,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "result_expires": settings.result_expires,
        # results hold the summary only, not the job's arguments: a session payload stored
        # again with every result would double Redis memory for a day (result_expires)
        "result_extended": False,
        # no STARTED record in the result backend: producers see PENDING, then the outcome
        # (SUCCESS, FAILURE, RETRY). Clients that take the first state they are told as the
        # result (celery-ts) read STARTED as the job's result; Flower and other monitors
        # still see a job start, from its task-started event (docs/jobs.md)
        "task_track_started": False,
        "worker_send_task_events": True,
        # jobs running when the broker connection drops finish (a short blip costs nothing);
        # one whose time limit runs out while the worker reconnects is sent again
        # (workers/request.py). Celery 6's default, True, kills them all at once instead.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_send_sent_event": True,
        "task_default_queue": "default",
        "task_queues": [Queue(name, routing_key=name) for name in CONSUMED_QUEUES],
        "task_routes": {name: {"queue": queue} for name, queue in ROUTES.items()},
        "timezone": settings.timezone,
        "enable_utc": True,
        "beat_schedule": build_beat_schedule(settings),
        "beat_schedule_filename": str(settings.home / "celerybeat-schedule"),
        "worker_hijack_root_logger": False,
    }
    scheme = broker.partition("://")[0]
    if scheme in TRANSPORTS:
        config["broker_transport"] = TRANSPORTS[scheme]
    if broker.startswith("rediss://"):
        # kombu only infers TLS from the scheme of its own transport, and then without
        # certificate checks; ours is named explicitly, so TLS is set here, verified
        config["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    if broker.startswith(("redis://", "rediss://")) and backend == broker:
        config["result_backend_transport_options"] = {"retry_policy": {"timeout": 5.0}}
    return config
