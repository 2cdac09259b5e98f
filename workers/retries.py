"""How a job's failures are retried: the backoff, what counts as an unreachable broker or
result backend, and how long a follow-up job waits for a broker that went away."""

from __future__ import annotations

import random

import redis.exceptions
from celery.exceptions import BackendError
from kombu.exceptions import OperationalError

# what a pool process raises when the broker or result backend cannot be reached
UNREACHABLE = (
    BackendError,
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
)
# a follow-up job waits ~10 s for a broker that went away (Celery's default gives up after
# 0.6 s): tries at 0, 0.5, 1.5 s, then every 1 s
FOLLOW_UP_RETRY_POLICY = {
    "max_retries": 11,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1.0,
}


def retry_delay(attempt: int, cap: float) -> float:
    """Exponential backoff with full jitter: 1, 2, 4, ... seconds, capped."""
    return random.uniform(0.5, 1.0) * min(cap, 2.0**attempt)
