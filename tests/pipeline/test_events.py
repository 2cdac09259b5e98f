"""Task events through a real worker, as a monitor (Flower) receives them: every job's
received/started/succeeded arrive, batched (at most one timer flush per TRAINLOG_EVENT_FLUSH_MS,
plus one per 24 events), and a warm shutdown publishes the events still held."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import session_payload
from tests.pipeline.conftest import make_settings
from tests.pipeline.monitor import BUFFER_LIMIT, WORKER_EVENTS, Monitor
from tests.services import redis_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess


@pytest.fixture(params=["embedded", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "embedded":
        yield None
    else:
        with redis_database() as url:
            yield url


def _started(
    home: Path, broker: str | None, flush_ms: int
) -> tuple[WorkerProcess, TrainlogClient, Monitor]:
    """The worker first: an embedded one clears the broker's bindings as it starts."""
    settings = make_settings(home, broker, event_flush_ms=flush_ms)
    worker = WorkerProcess(settings, name="events").start()
    client = TrainlogClient(settings)
    return worker, client, Monitor(client)


def test_every_job_event_arrives(tmp_path: Path, broker: str | None) -> None:
    """On Redis in batches; the embedded worker has no event loop, so Celery publishes each
    event as it happens there (a message file per event and monitor)."""
    worker, client, monitor = _started(tmp_path, broker, flush_ms=50)
    try:
        sessions = [session_payload(n, _id=str(uuid.uuid4())) for n in range(40)]
        results = [client.send("save_session", payload) for payload in sessions]
        for result in results:
            client.wait(result, timeout=60)
        ids = [result.id for result in results]
        seen = monitor.wait_for_all(ids, timeout=10)
        missing = {task_id: WORKER_EVENTS - types for task_id, types in seen.items()}
        assert not any(missing.values()), missing
        if broker is None:
            return
        events = sum(len(types) for types in seen.values())
        span = monitor.arrivals[-1] - monitor.arrivals[0]
        # stock Celery sends a save's "started" and "succeeded" in two messages: >= 80 here
        # one timer flush per 50 ms (+1), one per 24 events, +2 for delivery jitter in `span`
        bound = span / 0.05 + 1 + events / BUFFER_LIMIT + 2
        assert len(monitor.arrivals) <= bound, (len(monitor.arrivals), span, events)
    finally:
        worker.stop()
        monitor.close()
        client.close()


def test_held_events_wait_for_the_timer_and_shutdown_publishes_them(
    tmp_path: Path, redis_url: str
) -> None:
    worker, client, monitor = _started(tmp_path, redis_url, flush_ms=10_000)
    try:
        results = [client.send("ping") for _ in range(5)]  # 15 events: under the buffer limit
        for result in results:
            client.wait(result, timeout=60)
        ids = [result.id for result in results]
        time.sleep(0.5)
        assert not any(monitor.of(ids).values()), "events left before the 10 s flush"
        worker.stop()
        seen = monitor.wait_for_all(ids, timeout=10)
        assert all(types >= WORKER_EVENTS for types in seen.values()), seen
    finally:
        worker.stop()
        monitor.close()
        client.close()
