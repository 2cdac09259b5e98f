"""The worker's consumer: Celery's, with every message checked before Celery reads it, task
events batched and broker outages noted.

A message Celery could not read stopped the worker (see workers/envelope.py). Here each is
checked first (`read_envelope`), and one that fails the check, or that Celery itself then
refuses (an unknown task, content it does not accept, a body it cannot decode), is set aside
(workers/undeliverable.py) while the worker goes on.

Task events leave the worker in batches, at most `TRAINLOG_EVENT_FLUSH_MS` after the first.
Celery buffers a worker's task events and publishes what the buffer holds once per turn of the
event loop. A job longer than a turn (a save, ~6 ms) therefore costs two publishes, "started"
and "succeeded", each a Redis PUBLISH from the worker's main process and a message for every
monitor. Here the first buffered event starts a timer and the buffer goes out when it fires, or
at once when it holds the dispatcher's `buffer_limit` (24) events: one publish carries the
events of several jobs. Shutdown flushes what is left.

Remote-control commands that would stop or change the worker are refused
(workers/remote_control.py).

When the broker connection is lost, the time is noted on the app for the jobs then running:
their time limits go on counting while the worker reconnects, and one that runs out then is
sent again instead of failing (`workers/request.py`)."""

from __future__ import annotations

import logging
from time import monotonic, time
from typing import Any

from celery.worker.consumer import Consumer
from celery.worker.control import Panel
from vine import promise

from workers.envelope import Malformed, known_id, known_name, read_envelope
from workers.remote_control import obeyed_handlers
from workers.undeliverable import prepare, set_aside

log = logging.getLogger(__name__)
CONTROL_STEP = "celery.worker.consumer.control.Control"  # the remote-control bootstep


class TrainlogConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer: messages checked before Celery reads them, task events flushed on a
    timer instead of every loop turn, and the time of each broker connection loss set on the
    app (`broker_lost_at`)."""

    _flush_due: float | None = None  # when the scheduled flush fires; None: none scheduled

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        control = self.blueprint.steps.get(CONTROL_STEP)
        node = getattr(getattr(control, "box", None), "node", None)
        if node is not None:  # remote control on (the default)
            kinds = {name: meta.type for name, meta in Panel.meta.items()}
            node.handlers = obeyed_handlers(node.handlers, kinds)

    def create_task_handler(self, promise: Any = promise) -> Any:
        handle = super().create_task_handler(promise)
        settings = self.app.settings

        def on_task_received(message: Any) -> None:
            try:
                envelope = read_envelope(
                    message,
                    max_time_limit=settings.task_time_limit,
                    max_eta_ahead=settings.visibility_timeout,
                )
            except Malformed as problem:
                set_aside(self, message, problem)
                return
            except Exception as error:  # the check itself failed: so would Celery
                why = f"its envelope cannot be checked ({error!r})"[:300]
                set_aside(self, message, Malformed(why))
                return
            prepare(message, envelope)
            try:
                handle(message)
            except self.connection_errors:
                raise
            except Exception as error:
                if message.acknowledged:
                    log.exception("a message Celery took raised afterwards")
                    return
                why = f"its job could not be taken by Celery ({error!r})"[:300]
                refused = Malformed(why, task_id=envelope.task_id, task=envelope.task)
                set_aside(self, message, refused)

        return on_task_received

    def on_unknown_message(self, body: Any, message: Any) -> None:
        set_aside(self, message, Malformed("its headers and body name no task"))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        name, task_id = headers.get("task"), headers.get("id")
        set_aside(
            self,
            message,
            Malformed(
                f"its task {str(name)[:200]!r} does not run on this worker",
                task_id=task_id if isinstance(task_id, str) else None,
                task=str(name)[:200],
            ),
        )

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        task_id = headers.get("id")
        set_aside(
            self,
            message,
            Malformed(
                f"its content was refused by Celery ({exc})"[:300],
                task_id=task_id if isinstance(task_id, str) else None,
                task=str(headers.get("task"))[:200] if headers.get("task") else None,
            ),
        )

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        why = f"its body cannot be decoded ({type(exc).__name__}: {exc})"[:300]
        named = known_id(headers.get("id")), known_name(headers.get("task"))
        set_aside(self, message, Malformed(why, task_id=named[0], task=named[1]))

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
        self.app.broker_lost_at = time()  # read by workers/request.py
        super().on_connection_error_after_connected(exc)

    def shutdown(self) -> None:
        self._flush_due = None
        try:
            self._flush_events()
        except Exception as error:  # the broker is gone: the events are lost, the jobs are not
            log.warning("task events not published at shutdown: %r", error)
        super().shutdown()
