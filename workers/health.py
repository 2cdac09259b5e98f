"""Health of what trainlog needs: broker, result backend, database, folders."""

from __future__ import annotations

import os
from typing import Any

from storage.errors import PersistenceError
from storage.export_folder import export_folder_problem
from storage.options import shown_url
from storage.settings import Settings
from storage.sql.database import Database
from storage.stores import Stores
from workers.config import broker_and_backend, prepare_embedded_broker
from workers.queues import queue_depth, set_aside, taken_by_workers


def _broker(settings: Settings) -> dict[str, Any]:
    from kombu import Connection

    from workers.config import transport_options

    try:
        broker, _ = broker_and_backend(settings)
    except PersistenceError as error:  # a scheme Celery has no broker for
        return {"ok": False, "detail": str(error)}
    try:
        prepare_embedded_broker(settings)  # the embedded broker's "server" is its folders
        with Connection(
            broker, transport_options=transport_options(settings, broker), connect_timeout=3
        ) as connection:
            connection.ensure_connection(max_retries=1)
        depth, taken = queue_depth(settings), taken_by_workers(settings)
        queued = "queue depth not counted on this broker" if depth is None else f"{depth} queued"
        if taken is not None:
            queued += f", {taken} taken by workers and not finished"
        return {"ok": True, "detail": f"{shown_url(broker)} reachable, {queued}"}
    except Exception as error:
        return {"ok": False, "detail": f"{shown_url(broker)}: {error}"}


def _undeliverable(settings: Settings) -> dict[str, Any]:
    """Messages no worker could run, kept for a look: a problem until someone has looked."""
    try:
        aside, where = set_aside(settings)
    except Exception as error:
        return {"ok": False, "detail": f"cannot count the set-aside messages: {error}"}
    if aside:
        return {
            "ok": False,
            "detail": f"{aside} message(s) set aside in {where}: see `trainlog undeliverable`",
        }
    return {"ok": True, "detail": "no message set aside"}


def _database(settings: Settings) -> dict[str, Any]:
    """Reachable and, on PostgreSQL (where migrating is a deploy step), at the schema's heads:
    a worker refuses to start otherwise."""
    from storage.migrations import require_heads

    try:
        database = Database(settings.database_url)
    except PersistenceError as error:  # a scheme trainlog has no driver for
        return {"ok": False, "detail": str(error)}
    try:
        health = database.health()
        if database.dialect != "sqlite":
            require_heads(database)
        return {"ok": True, "detail": f"{health['url']} ({health['latencyMs']} ms)"}
    except PersistenceError as error:
        return {"ok": False, "detail": str(error)}
    finally:
        database.dispose()


def _folders(settings: Settings) -> dict[str, Any]:
    problems = []
    for folder in (settings.data_dir, settings.export_dir, settings.import_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                problems.append(f"{folder} is not writable")
        except OSError as error:
            problems.append(f"{folder}: {error.strerror}")
    stores = Stores(settings)
    try:
        if shared := export_folder_problem(stores):
            problems.append(f"a worker here would not start: {shared}")
    except PersistenceError:
        pass  # the database's own check says why
    finally:
        stores.close()
    return {
        "ok": not problems,
        "detail": "; ".join(problems) or f"data {settings.data_dir}, exports {settings.export_dir}",
    }


def check_all(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "broker": _broker(settings),
        "undeliverable": _undeliverable(settings),
        "database": _database(settings),
        "folders": _folders(settings),
    }
