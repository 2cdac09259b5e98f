"""Where a sent job is on Redis: finished, still queued, or taken but unacked; else lost."""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from workers.config import CONSUMED_QUEUES


def unaccounted_jobs(client: redis.Redis, task_ids: Iterable[str]) -> set[str]:
    """Ids with no stored result, in no queue list and not in kombu's unacked hash: lost."""
    seen: set[str] = set()
    for queue in CONSUMED_QUEUES:
        seen.update(json.loads(raw)["headers"]["id"] for raw in client.lrange(queue, 0, -1))
    seen.update(json.loads(raw)[0]["headers"]["id"] for raw in client.hvals("unacked"))
    return {
        task_id
        for task_id in task_ids
        if task_id not in seen and not client.exists(f"celery-task-meta-{task_id}")
    }
