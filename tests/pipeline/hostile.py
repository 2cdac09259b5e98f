"""Hand-made broker messages, put straight on a queue the way a careless or hostile producer
could, and what became of them (a result, a dead letter or a failure record)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

import redis

from storage.settings import Settings
from storage.stores import Stores
from workers.config import embedded_folders
from workers.queues import set_aside


def task_headers(task: str = "trainlog.ping", **changes: Any) -> dict[str, Any]:
    """Protocol 2 headers as Celery 5 writes them; `changes` replace or add fields."""
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": "{}",
        "origin": "hostile@test",
        "ignore_result": False,
    }
    headers.update(changes)
    return headers


def job_body(args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> bytes:
    return json.dumps([args or [], kwargs or {}, {}]).encode()


def envelope(
    headers: Any,
    body: bytes | str,
    *,
    content_type: str = "application/json",
    encoded: bool = False,
    queue: str = "default",
    properties: bool = True,
) -> dict[str, Any]:
    """kombu's virtual-transport envelope (Redis and the embedded broker); `encoded`: `body`
    is already the envelope's body text (base64, or deliberately not)."""
    text = body if encoded else base64.b64encode(body).decode()  # type: ignore[arg-type]
    message: dict[str, Any] = {
        "body": text,
        "content-encoding": "utf-8",
        "content-type": content_type,
        "headers": headers,
    }
    if properties:
        message["properties"] = {
            "correlation_id": headers.get("id") if isinstance(headers, dict) else None,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        }
    return message


def put_raw(settings: Settings, message: dict[str, Any] | bytes, queue: str = "default") -> None:
    """Put one envelope (or raw bytes) on `queue` as the broker stores messages."""
    data = message if isinstance(message, bytes) else json.dumps(message).encode()
    if settings.broker_is_embedded:
        folder = embedded_folders(settings)["queue"]
        temporary = folder / f".incoming-{uuid.uuid4().hex}"
        temporary.write_bytes(data)
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        os.replace(temporary, folder / name)
    else:
        client = redis.Redis.from_url(str(settings.broker_url))
        try:
            client.lpush(queue, data)
        finally:
            client.close()


def dead_letters(settings: Settings) -> int:
    return set_aside(settings)[0]


def failure_ids(stores: Stores) -> set[str | None]:
    return {row["taskId"] for row in stores.repository("task_failures").iterate()}
