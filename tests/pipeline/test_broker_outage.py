"""Redis, the broker, killed and started again while a worker is saving sessions: the worker
stays up, and every job is persisted exactly once after Redis comes back. The long outage
outlasts the jobs' time limits: the jobs it caught running time out while the worker waits to
reconnect, and must run again rather than count as failed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage.stores import Stores
from tests.factories import session_payload
from tests.pipeline.conftest import assert_saved_once, make_settings, wait_for_sessions
from tests.services import private_redis
from workers.client import TrainlogClient
from workers.process import WorkerProcess

JOBS = 200


@pytest.mark.parametrize("outage", [2, 10], ids=["short", "past-the-time-limit"])
def test_a_broker_restart_mid_run_loses_no_job_and_persists_each_once(
    tmp_path: Path, outage: float
) -> None:
    (tmp_path / "redis").mkdir()
    with private_redis(tmp_path / "redis") as redis_server:
        # a job a worker held when Redis went away is restored after the visibility timeout
        settings = make_settings(
            tmp_path / "home",
            redis_server.url,
            task_time_limit=8,
            task_soft_time_limit=6,
            visibility_timeout=10,
        )
        stores = Stores(settings)
        stores.initialize()
        client = TrainlogClient(settings)
        payloads = [session_payload(300 + n, durationSec=float(900 + n)) for n in range(JOBS)]
        with WorkerProcess(settings, name="survivor", concurrency=2) as worker:
            for payload in payloads:
                client.send("save_session", payload)
            wait_for_sessions(stores, 20, timeout=60)
            redis_server.kill()
            saved_before = stores.sessions.count()
            time.sleep(outage)
            assert worker.process is not None and worker.process.poll() is None
            redis_server.start()
            wait_for_sessions(stores, JOBS, timeout=120)
            assert worker.process.poll() is None, "the worker stopped"
        client.close()
    assert saved_before < JOBS, "every job was done before Redis went away"
    assert_saved_once(stores, settings, payloads)
    stores.close()
