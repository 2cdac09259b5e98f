"""The worker's consumer: Celery's, with task events batched and broker outages noted.

Task events leave the worker in batches, at most `TRAINLOG_EVENT_FLUSH_MS` after the first.
Celery buffers a worker's task events and publishes what the buffer holds once per turn of the
event loop. A job longer than a turn (a save, ~6 ms) therefore costs two publishes, "started"
and "succeeded", each a Redis PUBLISH from the worker's main process and a message for every
monitor. Here the first buffered event starts a timer and the buffer goes out when it fires, or
at once when it holds the dispatcher's `buffer_limit` (24) events: one publish carries the
events of several jobs. Shutdown flushes what is left.

When the broker connection is lost, the time is noted on the app for the jobs then running:
their time limits go on counting while the worker reconnects, and one that runs out then is
sent again instead of failing (`tasks/request.py`)."""

from __future__ import annotations

import logging
from time import monotonic, time
from typing import Any

from celery.worker.consumer import Consumer

from tasks.request import BROKER_LOST_AT

log = logging.getLogger(__name__)


class TrainlogConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer: task events flushed on a timer instead of every loop turn, and the
    time of each broker connection loss set on the app (`BROKER_LOST_AT`)."""

    _flush_due: float | None = None  # when the scheduled flush fires; None: none scheduled

    @property
    def event_flush_seconds(self) -> float:
        return float(self.app.settings.event_flush_ms) / 1000

    def on_send_event_buffered(self) -> None:
        interval = self.event_flush_seconds
        if self.hub is None or interval <= 0:
            super().on_send_event_buffered()
            return
        now = monotonic()
        # a timer overdue by a whole interval went with its loop (a reconnect): set a new one
        if self._flush_due is None or now > self._flush_due + interval:
            self._flush_due = now + interval
            self.hub.call_later(interval, self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_due = None
        self._flush_events()

    def on_connection_error_after_connected(self, exc: Any) -> None:
        setattr(self.app, BROKER_LOST_AT, time())
        super().on_connection_error_after_connected(exc)

    def shutdown(self) -> None:
        self._flush_due = None
        try:
            self._flush_events()
        except Exception as error:  # the broker is gone: the events are lost, the jobs are not
            log.warning("task events not published at shutdown: %r", error)
        super().shutdown()
