"""How many messages wait in the broker's queues, and the messages set aside as undeliverable
(doctor, `trainlog undeliverable`, demo, tests)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.settings import Settings
from workers.config import CONSUMED_QUEUES, broker_and_backend, embedded_folders


def queue_depth(settings: Settings) -> int | None:
    """Messages waiting in the queues trainlog consumes; None for a broker it cannot count
    (only Redis and the embedded broker are counted)."""
    broker, _ = broker_and_backend(settings)
    if broker.startswith("filesystem://"):
        folder = embedded_folders(settings)["queue"]
        names = [path.name for path in folder.glob("*.msg")] if folder.exists() else []
        return sum(
            1 for name in names for queue in CONSUMED_QUEUES if name.endswith(f".{queue}.msg")
        )
    if broker.startswith(("redis://", "rediss://")):
        return _list_lengths(broker, CONSUMED_QUEUES)
    return None


def taken_by_workers(settings: Settings) -> int | None:
    """Messages workers took and have not finished (Redis's `unacked`): running, waiting for
    their countdown, or held by a worker that died (back in the queue after the visibility
    timeout). None on other brokers."""
    broker, _ = broker_and_backend(settings)
    if not broker.startswith(("redis://", "rediss://")):
        return None
    from workers.brokers.redis import Channel

    client = _redis(broker)
    try:
        return int(client.hlen(Channel.unacked_key))
    finally:
        client.close()


def set_aside(settings: Settings) -> tuple[int, str]:
    """How many unreadable messages the broker's transport set aside, and where they are."""
    broker, _ = broker_and_backend(settings)
    if broker.startswith("filesystem://"):
        folder = embedded_folders(settings)["rejected"]
        return (sum(1 for _ in folder.iterdir()) if folder.exists() else 0), str(folder)
    if broker.startswith(("redis://", "rediss://")):
        from workers.brokers.redis import Channel

        return _list_lengths(broker, [Channel.undeliverable_key]), Channel.undeliverable_key
    return 0, ""


def _list_lengths(broker: str, keys: Sequence[str]) -> int:
    client = _redis(broker)
    try:
        return sum(int(client.llen(key)) for key in keys)
    finally:
        client.close()


def list_undeliverable(settings: Settings, limit: int = 50) -> list[dict[str, Any]]:
    """The set-aside messages, newest first: reason, queue, when, and the message (parsed
    when it is JSON). Only Redis and the embedded broker set messages aside."""
    broker, _ = broker_and_backend(settings)
    if broker.startswith("filesystem://"):
        folder = embedded_folders(settings)["rejected"]
        paths = sorted(_files(folder), key=lambda path: path.stat().st_mtime, reverse=True)
        return [_entry(path.read_bytes()) for path in paths[:limit]]
    if broker.startswith(("redis://", "rediss://")):
        from workers.brokers.redis import Channel

        client = _redis(broker)
        try:
            items = client.lrange(Channel.undeliverable_key, 0, limit - 1)
        finally:
            client.close()
        return [_entry(item) for item in items]
    return []


def purge_undeliverable(settings: Settings) -> int:
    """Remove every set-aside message (after an operator looked at them); returns how many."""
    broker, _ = broker_and_backend(settings)
    if broker.startswith("filesystem://"):
        removed = 0
        for path in _files(embedded_folders(settings)["rejected"]):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
    if broker.startswith(("redis://", "rediss://")):
        from workers.brokers.redis import Channel

        client = _redis(broker)
        try:
            pipe = client.pipeline()
            pipe.llen(Channel.undeliverable_key)
            pipe.delete(Channel.undeliverable_key)
            return int(pipe.execute()[0])
        finally:
            client.close()
    return 0


def _files(folder: Path) -> list[Path]:
    try:
        return [path for path in folder.iterdir() if path.is_file()]
    except FileNotFoundError:
        return []


def _entry(raw: bytes) -> dict[str, Any]:
    """One dead letter as stored (see workers/brokers/messages.py); an older or foreign entry
    is shown as its text."""
    text = raw.decode("utf-8", errors="backslashreplace")
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
        entry = None
    if not isinstance(entry, dict) or "reason" not in entry:
        return {"reason": "(not recorded)", "queue": None, "setAsideAt": None, "message": text}
    message = entry.get("message")
    if isinstance(message, str):
        with contextlib.suppress(ValueError, RecursionError):
            entry["message"] = json.loads(message)
    return entry


def _redis(broker: str) -> Any:
    import redis

    return redis.Redis.from_url(broker, socket_timeout=5)
