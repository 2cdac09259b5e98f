"""Redis, the broker, killed and started again while a worker is saving sessions: the worker
stays up, and every job is persisted exactly once after Redis comes back. The long outage
outlasts the jobs' time limits: the jobs it caught running time out while the worker waits to
reconnect, and must run again rather than count as failed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.factories import session_payload
from tests.pipeline.conftest import assert_saved_once, redis_outage, wait_for_sessions
from workers.process import WorkerProcess

JOBS = 200


@pytest.mark.parametrize("seconds", [2, 10], ids=["short", "past-the-time-limit"])
def test_a_broker_restart_mid_run_loses_no_job_and_persists_each_once(
    tmp_path: Path, seconds: float
) -> None:
    # a job a worker held when Redis went away is restored after the visibility timeout
    with redis_outage(tmp_path, visibility_timeout=10) as outage:
        stores, client = outage.stores, outage.client
        payloads = [session_payload(300 + n, durationSec=float(900 + n)) for n in range(JOBS)]
        with WorkerProcess(outage.settings, name="survivor", concurrency=2) as worker:
            for payload in payloads:
                client.send("save_session", payload)
            wait_for_sessions(stores, 20, timeout=60)
            outage.redis.kill()
            saved_before = stores.sessions.count()
            time.sleep(seconds)
            assert worker.process is not None and worker.process.poll() is None
            outage.redis.start()
            wait_for_sessions(stores, JOBS, timeout=120)
            assert worker.process.poll() is None, "the worker stopped"
        assert saved_before < JOBS, "every job was done before Redis went away"
        assert_saved_once(stores, outage.settings, payloads)
