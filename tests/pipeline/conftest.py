from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import pytest

from storage.sessions.schema import shipped_schema
from storage.settings import Settings
from storage.stores import Stores
from tests.services import PrivateRedis, private_redis, redis_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess

T = TypeVar("T")


@dataclass
class Pipeline:
    """A real worker process on a real broker, its settings, a client and the storage."""

    settings: Settings
    worker: WorkerProcess
    client: TrainlogClient
    stores: Stores


def make_settings(home: Path, broker: str | None, **overrides: object) -> Settings:
    settings = Settings.for_home(home, lock_timeout=5.0, max_retries=4, retry_backoff_max=2)
    if broker:
        settings = settings.with_(broker_url=broker)
    return settings.with_(**overrides)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    home = tmp_path_factory.mktemp(f"pipeline-{request.param}")
    if request.param == "embedded":
        yield from run_pipeline(make_settings(home, None))
    else:
        with redis_database() as url:
            yield from run_pipeline(make_settings(home, url))


@contextmanager
def storage_and_client(settings: Settings) -> Iterator[tuple[Stores, TrainlogClient]]:
    """Storage at the schema's head and a producer client on `settings`, closed after."""
    stores = Stores(settings)
    stores.initialize()
    client = TrainlogClient(settings)
    try:
        yield stores, client
    finally:
        client.close()
        stores.close()


def run_pipeline(settings: Settings) -> Iterator[Pipeline]:
    """Storage, a client and a real worker on `settings`, stopped after."""
    with storage_and_client(settings) as (stores, client):
        worker = WorkerProcess(settings, name="test").start()
        try:
            yield Pipeline(settings, worker, client, stores)
        finally:
            worker.stop()


@dataclass
class Outage:
    """A Redis of the test's own that it may kill and start again (its data kept on disk),
    with settings, storage and a client on it."""

    redis: PrivateRedis
    settings: Settings
    stores: Stores
    client: TrainlogClient


@contextmanager
def redis_outage(folder: Path, **overrides: object) -> Iterator[Outage]:
    """Jobs' time limits 6 s soft and 8 s hard, so a test's outage can outlast them."""
    (folder / "redis").mkdir()
    with private_redis(folder / "redis") as server:
        settings = make_settings(
            folder / "home",
            server.url,
            **{"task_time_limit": 8, "task_soft_time_limit": 6, **overrides},
        )
        with storage_and_client(settings) as (stores, client):
            yield Outage(server, settings, stores, client)


def wait_for(probe: Callable[[], T], seconds: float = 15) -> T:
    """Poll until `probe` returns something truthy, or its last value after `seconds` (Celery
    records results before on_failure runs)."""
    deadline = time.monotonic() + seconds
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def wait_for_sessions(stores: Stores, count: int, timeout: float) -> None:
    """Until `count` sessions are in SQL; fails naming how many there were after `timeout`."""
    deadline = time.monotonic() + timeout
    while (saved := stores.sessions.count()) < count:
        assert time.monotonic() < deadline, f"{saved} sessions saved after {timeout:g}s"
        time.sleep(0.05)


def assert_saved_once(stores: Stores, settings: Settings, payloads: list[dict[str, Any]]) -> None:
    """Each payload is one SQL session at version 1 with one schema-valid JSON file."""
    assert stores.sessions.count() == len(payloads)
    assert all(stores.sessions.get(p["_id"]).version == 1 for p in payloads)  # type: ignore[union-attr]
    files = sorted(settings.export_dir.glob("training_session_*.json"))
    assert len(files) == len(payloads)
    for path in files:
        jsonschema.validate(json.loads(path.read_text()), shipped_schema())
