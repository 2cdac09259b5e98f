"""How many messages wait in the broker's queues (doctor, demo, tests)."""

from __future__ import annotations

from collections.abc import Sequence

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
    import redis

    client = redis.Redis.from_url(broker, socket_timeout=5)
    try:
        return sum(int(client.llen(key)) for key in keys)
    finally:
        client.close()
