"""Messages a worker cannot turn into a job. Each is set aside whole, with the reason, where an
operator finds it (the Redis list `trainlog.undeliverable`, or `broker/rejected/` of the
embedded broker: `trainlog undeliverable`, counted by `trainlog doctor`), recorded in the
failure log and, when it names a task id, answered with a FAILURE result (`VALIDATION:
message set aside: …`), so its producer is not left waiting. Then it is acknowledged, and the
worker takes the next one: a bad message costs that message, never the worker."""

from __future__ import annotations

import json
import logging
from typing import Any

from storage.errors import ValidationError
from tasks.failures import record_failure
from workers.envelope import Envelope, Malformed
from workers.summaries import arguments_repr

log = logging.getLogger(__name__)


def set_aside(consumer: Any, message: Any, problem: Malformed) -> None:
    """Keep, record and answer `message` (see the module's docstring). Connection errors are
    raised for Celery to reconnect: the message, not acknowledged, comes back."""
    kept = _keep(consumer, message, problem.reason)
    log.error(
        "set aside a message%s%s: %s",
        f" for {problem.task}" if problem.task else "",
        f" [{problem.task_id}]" if problem.task_id else "",
        problem.reason,
    )
    if not kept:
        return
    error = ValidationError(f"message set aside: {problem.reason}", field="message")
    app = consumer.app
    try:
        record_failure(
            app.process_stores(),
            task_id=problem.task_id,
            task_name=problem.task or "(unreadable message)",
            args=None,
            kwargs=None,
            error=error,
        )
    except Exception:
        log.exception("could not record the set-aside message %s", problem.task_id)
    if problem.task_id:
        _answer(consumer, problem.task_id, error)


def _keep(consumer: Any, message: Any, reason: str) -> bool:
    """Set the message aside and acknowledge it; False when it could not be kept (it then
    stays unacknowledged and comes back: at the visibility timeout, or the next start)."""
    keep = getattr(getattr(message, "channel", None), "set_aside", None)
    try:
        if keep is not None:
            keep(message, reason)
            if not message.acknowledged:
                message.ack()
        elif not message.acknowledged:  # another broker: its own dead-lettering, if set up
            message.reject(requeue=False)
    except consumer.connection_errors:
        raise
    except Exception:
        log.exception("could not set aside a message (%s): it stays unacknowledged", reason)
        return False
    return True


def _answer(consumer: Any, task_id: str, error: ValidationError) -> None:
    try:
        consumer.app.backend.mark_as_failure(task_id, error, call_errbacks=False)
    except Exception:
        log.exception("could not store the failure of set-aside message %s", task_id)
    dispatcher = getattr(consumer, "event_dispatcher", None)
    if dispatcher is not None and getattr(dispatcher, "enabled", False):
        try:
            dispatcher.send("task-failed", uuid=task_id, exception=repr(error), traceback="")
        except Exception:
            log.exception("could not send the task-failed event of %s", task_id)


def prepare(message: Any, envelope: Envelope) -> None:
    """Make the message what Celery reads next: protocol 2 (a protocol 1 body converted),
    and argument summaries in place of the producer's reprs, which may show secrets in task
    events (Flower) and logs."""
    headers = {**envelope.headers, **arguments_repr(envelope.args, envelope.kwargs)}
    if envelope.converted:
        body = [envelope.args, envelope.kwargs, envelope.embed]
        message.body = json.dumps(body).encode("utf-8")
        message._decoded_cache = body
        message.content_encoding = "utf-8"
    message.headers = headers
