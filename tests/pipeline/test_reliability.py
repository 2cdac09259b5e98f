"""Failure cases through real workers on Redis: a foreign producer, a whole worker SIGKILLed with
200 jobs queued, pickled messages, an export folder that fails after the SQL commit, Flower."""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from celery import Celery
from celery.result import AsyncResult

from storage.sessions.exports import export_path
from storage.sessions.model import parse_session
from storage.sessions.schema import shipped_schema
from storage.stores import Stores
from tests.factories import session_payload
from tests.pipeline.conftest import assert_saved_once, make_settings
from tests.pipeline.ledger import unaccounted_jobs
from tests.services import port_open
from workers.client import TrainlogClient
from workers.process import WorkerProcess
from workers.queues import list_undeliverable, queue_depth

FOREIGN_PRODUCER = """
import json, sys
from celery import Celery
app = Celery(broker=sys.argv[1], backend=sys.argv[1])
result = app.send_task("trainlog.save_session", args=[json.loads(sys.argv[2])])
value = result.get(timeout=60)
assert not any(name.split(".")[0] in ("storage", "tasks", "workers") for name in sys.modules)
print(json.dumps(value))
"""


@pytest.fixture
def redis_home(tmp_path: Path, redis_url: str):
    settings = make_settings(
        tmp_path / "home",
        redis_url,
        task_time_limit=20,
        task_soft_time_limit=15,
        visibility_timeout=25,
    )
    stores = Stores(settings)
    stores.initialize()
    yield settings, stores
    stores.close()


def test_service_without_trainlog_sends_by_name(redis_home, tmp_path: Path) -> None:
    settings, stores = redis_home
    payload = session_payload(10)
    with WorkerProcess(settings, name="foreign"):
        done = subprocess.run(
            [sys.executable, "-c", FOREIGN_PRODUCER, settings.broker_url, json.dumps(payload)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert stores.sessions.get(payload["_id"]) is not None
    jsonschema.validate(json.loads(Path(result["jsonPath"]).read_text()), shipped_schema())


def test_whole_worker_sigkilled_loses_nothing_and_persists_once(redis_home) -> None:
    settings, stores = redis_home
    client = TrainlogClient(settings)
    payloads = [session_payload(100 + n, durationSec=float(600 + n)) for n in range(200)]
    worker = WorkerProcess(settings, name="victim", concurrency=2).start()
    results = [client.send("save_session", payload) for payload in payloads]
    deadline = time.monotonic() + 60
    while stores.sessions.count() < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.kill()  # SIGKILL to the main process and its pool children
    done_before = stores.sessions.count()
    assert done_before < 200, "the worker finished before it could be killed"
    with WorkerProcess(settings, name="rescuer", concurrency=2):
        for result in results:
            result.get(timeout=180)
        deadline = time.monotonic() + 60
        while queue_depth(settings) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert_saved_once(stores, settings, payloads)
    client.close()


def test_worker_killed_at_random_moments_loses_no_job(tmp_path: Path, redis_url: str) -> None:
    """Kombu's stock transport loses a job in about one kill in ten (bench/redelivery.py)."""
    import redis

    settings = make_settings(
        tmp_path / "home",
        redis_url,
        task_time_limit=2,
        task_soft_time_limit=1,
        visibility_timeout=4,
    )
    store = redis.Redis.from_url(redis_url)
    client = TrainlogClient(settings)
    rng = random.Random(11)
    sent: list = []
    for round_ in range(4):
        batch = [client.send("ping") for _ in range(150)]
        sent += batch
        worker = WorkerProcess(settings, name=f"victim{round_}").start()
        target = len(sent) - len(batch) + rng.randint(5, 140)
        deadline = time.monotonic() + 60
        while _finished(store, sent) < target and time.monotonic() < deadline:
            time.sleep(0.002)
        worker.kill()
        assert unaccounted_jobs(store, [result.id for result in sent]) == set()
    with WorkerProcess(settings, name="rescuer"):
        for result in sent:
            assert result.get(timeout=60)["pong"] is True
    client.close()


def _finished(store, results: list) -> int:
    return int(store.exists(*(f"celery-task-meta-{result.id}" for result in results)))


def test_pickled_message_is_refused(redis_home) -> None:
    settings, stores = redis_home
    import redis

    payload = session_payload(11)
    body = pickle.dumps(
        ([payload], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    )
    message = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "binary",
        "content-type": "application/x-python-serialize",
        "headers": {
            "lang": "py",
            "task": "trainlog.save_session",
            "id": "pickled-1",
            "retries": 0,
            "root_id": "pickled-1",
            "parent_id": None,
            "group": None,
            "argsrepr": "",
            "kwargsrepr": "",
            "origin": "test",
            "eta": None,
            "expires": None,
            "timelimit": [None, None],
        },
        "properties": {
            "correlation_id": "pickled-1",
            "delivery_mode": 2,
            "delivery_tag": "pickled-1",
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": "default"},
            "priority": 0,
        },
    }
    with WorkerProcess(settings, name="picky"):
        client = redis.Redis.from_url(settings.broker_url)
        client.lpush("default", json.dumps(message))
        client.close()
        result = AsyncResult("pickled-1", app=Celery(backend=settings.broker_url))
        outcome = result.get(timeout=30, propagate=False)  # never unpickled, but answered
    assert result.state == "FAILURE"
    assert str(outcome).startswith("VALIDATION: message set aside: its content type")
    assert "application/x-python-serialize" in str(outcome)
    [kept] = list_undeliverable(settings)
    assert kept["message"] == message
    assert stores.sessions.get(payload["_id"]) is None


def test_export_failure_after_commit_is_retried_until_it_lands(redis_home) -> None:
    settings, stores = redis_home
    payload = session_payload(12)
    client = TrainlogClient(settings)
    with WorkerProcess(settings, name="retry") as worker:
        # the file's name is taken by a folder (root writes anywhere): the write fails after
        # the rows, as on a full disk
        taken = export_path(settings.export_dir, parse_session(payload))
        taken.mkdir()
        result = client.send("save_session", payload)
        deadline = time.monotonic() + 30
        while "transient UNAVAILABLE" not in worker.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stores.sessions.get(payload["_id"]) is not None  # SQL committed first
        taken.rmdir()
        value = result.get(timeout=60)
    assert Path(value["jsonPath"]).exists()
    assert stores.sessions.get(payload["_id"]).version == 1
    client.close()


def test_flower_lists_worker_and_tasks(redis_home, tmp_path: Path) -> None:
    settings, _ = redis_home
    port = 15555 + os.getpid() % 1000
    env = {
        **os.environ,
        "TRAINLOG_BROKER_URL": settings.broker_url,
        "TRAINLOG_HOME": str(settings.home),
        "TRAINLOG_FLOWER_PASSWORD": "s3cret",
        "TRAINLOG_TASK_TIME_LIMIT": "20",
        "TRAINLOG_TASK_SOFT_TIME_LIMIT": "15",
        "TRAINLOG_VISIBILITY_TIMEOUT": "25",
    }
    flower = subprocess.Popen(
        [sys.executable, "-m", "workers", "flower", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)
        client = TrainlogClient(settings)
        with WorkerProcess(settings, name="watched"):
            client.run("save_session", session_payload(13), timeout=60)
            workers = _get(port, "/api/workers?refresh=1", auth=("admin", "s3cret"))
            deadline = time.monotonic() + 20
            while not workers and time.monotonic() < deadline:  # inspect replies may lag
                time.sleep(1)
                workers = _get(port, "/api/workers?refresh=1", auth=("admin", "s3cret"))
            tasks = _get(port, "/api/tasks", auth=("admin", "s3cret"))
        client.close()
        assert any(name.startswith("watched-") for name in workers), (workers, tasks)
        saves = [t for t in tasks.values() if t.get("name") == "trainlog.save_session"]
        assert saves, tasks
        # Flower shows the producer's summary of the arguments, not the athlete's data
        assert all(session_payload(13)["_id"] in str(t.get("args")) for t in saves), saves
        assert not any("Ana Test" in json.dumps(t) for t in saves), saves
        with pytest.raises(urllib.error.HTTPError) as denied:
            _get(port, "/api/workers", auth=None)
        assert denied.value.code == 401
    finally:
        os.killpg(flower.pid, 9)
        flower.wait()


def _get(port: int, path: str, auth: tuple[str, str] | None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRAINLOG_LOCK_TIMEOUT", "nan"),
        ("TRAINLOG_TASK_TIME_LIMIT", "0"),
        ("TRAINLOG_TABLE_BACKENDS", "tokenz=sql"),
    ],
)
def test_a_worker_with_a_bad_setting_refuses_to_start_naming_it(
    tmp_path: Path, name: str, value: str
) -> None:
    """Both ways of starting one: trainlog's command and Celery's own."""
    env = {**os.environ, "TRAINLOG_HOME": str(tmp_path), name: value}
    for command in (["trainlog", "worker"], ["celery", "-A", "workers.app", "worker"]):
        done = subprocess.run(
            [sys.executable, "-m", *(["workers"] if command[0] == "trainlog" else ["celery"]),
             *command[1:]],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert f"error: CONFIGURATION: {name}" in done.stderr and "Traceback" not in done.stderr
