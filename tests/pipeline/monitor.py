"""A monitor of task events, as Flower receives them, on a thread of the test."""

from __future__ import annotations

import threading
import time
from typing import Any

from workers.client import TrainlogClient

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
