"""How a job's failures are retried: the backoff, what counts as an unreachable broker or
result backend, how long a follow-up job waits for a broker that went away, and what a job
that outlasted its retries says."""

from __future__ import annotations

import random

import redis.exceptions
from celery.exceptions import BackendError
from kombu.exceptions import OperationalError

from storage.errors import PersistenceError

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


def gave_up(error: PersistenceError, retries: int) -> PersistenceError:
    """The error a job ends with when a transient failure outlasts its retries: the same class
    and code, saying that it was retried and that a resend is safe (every job is idempotent,
    and what it committed before failing, a save's rows say, stays)."""
    tries = f"{retries} {'retry' if retries == 1 else 'retries'}"
    return type(error)(
        f"{error.message} (still failing after {tries}; what the job completed before it "
        "failed stays done, and sending the job again is safe)",
        table=error.table,
        key=error.key,
        path=error.path,
        field=error.field,
    )
