"""Redis, the broker, killed and started again while a worker is saving sessions: the worker
stays up, and every job is persisted exactly once after Redis comes back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema

from storage.sessions.schema import shipped_schema
from storage.stores import Stores
from tests.factories import session_payload
from tests.pipeline.conftest import make_settings
from tests.services import private_redis
from workers.client import TrainlogClient
from workers.process import WorkerProcess

JOBS = 200


def wait_for(sessions: int, stores: Stores, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (count := stores.sessions.count()) < sessions:
        assert time.monotonic() < deadline, f"{count} sessions saved after {timeout:g}s"
        time.sleep(0.05)


def test_a_broker_restart_mid_run_loses_no_job_and_persists_each_once(tmp_path: Path) -> None:
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
            wait_for(20, stores, timeout=60)
            redis_server.kill()
            saved_before = stores.sessions.count()
            time.sleep(2)
            assert worker.process is not None and worker.process.poll() is None
            redis_server.start()
            wait_for(JOBS, stores, timeout=120)
            assert worker.process.poll() is None, "the worker stopped"
        client.close()
    assert saved_before < JOBS, "every job was done before Redis went away"
    assert all(stores.sessions.get(p["_id"]).version == 1 for p in payloads)  # type: ignore[union-attr]
    files = sorted(settings.export_dir.glob("training_session_*.json"))
    assert len(files) == JOBS
    for path in files:
        jsonschema.validate(json.loads(path.read_text()), shipped_schema())
    stores.close()
