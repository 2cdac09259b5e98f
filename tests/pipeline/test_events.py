"""Task events through a real worker, as a monitor (Flower) receives them: every job's
received/started/succeeded arrive, batched (at most one timer flush per TRAINLOG_EVENT_FLUSH_MS,
plus one per 24 events), and a warm shutdown publishes the events still held."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import session_payload
from tests.pipeline.conftest import make_settings
from tests.services import redis_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess

WORKER_EVENTS = {"task-received", "task-started", "task-succeeded"}
BUFFER_LIMIT = 24  # celery's EventDispatcher flushes a group at once when it holds this many


class Monitor:
    """Task events captured on a thread, with the arrival time of each worker message."""

    def __init__(self, client: TrainlogClient) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # one per message carrying worker task events
        self.connection = client.celery.connection_for_read()
        self.receiver = client.celery.events.Receiver(
            self.connection, handlers={"*": self.events.append}
        )
        receive = self.receiver._receive

        def counted(body: Any, message: Any) -> None:
            batch = body if isinstance(body, list) else [body]
            if any(event.get("type") in WORKER_EVENTS for event in batch):
                self.arrivals.append(time.monotonic())
            receive(body, message)

        self.receiver._receive = counted
        ready = threading.Event()
        self.receiver.on_consume_ready = lambda *_args, **_kwargs: ready.set()
        self.thread = threading.Thread(
            target=self.receiver.capture, kwargs={"wakeup": False}, daemon=True
        )
        self.thread.start()
        assert ready.wait(10), "the event receiver did not start consuming"

    def of(self, task_ids: list[str]) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {task_id: set() for task_id in task_ids}
        for event in list(self.events):
            if event.get("uuid") in seen and event.get("type") in WORKER_EVENTS:
                seen[event["uuid"]].add(event["type"])
        return seen

    def wait_for_all(self, task_ids: list[str], timeout: float) -> dict[str, set[str]]:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.of(task_ids)
            if all(types >= WORKER_EVENTS for types in seen.values()):
                return seen
            if time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def close(self) -> None:
        self.receiver.should_stop = True
        self.thread.join(10)
        self.connection.release()


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
