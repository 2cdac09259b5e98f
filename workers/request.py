"""The worker-side request of every trainlog job.

Arguments nested too deep are refused in the worker's main process, before the pool sees them.
Celery passes the message body to a pool process, which decodes and reports on it recursively;
~500 levels deep and the job vanished there (no result, no log line, the message never
acknowledged, so Redis would hand it out again and again). Here it fails at once as
VALIDATION, recorded like any other failure.

A job whose pool process could not reach the broker or the result backend around the job (to
record it started, or to store its result) goes back to the queue. Celery acknowledged it as
failed (`acks_late` acks failures), so a job that never ran its body, because Redis was down
when it would have been marked started, was lost. Jobs are idempotent, so running one again
whose body did finish is safe.

Likewise a job whose time limit ran out after the worker lost the broker connection while it
ran: the limit went on counting while the worker reconnected (its main process does nothing
else meanwhile, not even collect finished jobs), so the timeout says nothing about the job,
and Celery would acknowledge it as failed. The worker's consumer notes when it lost the
broker (`broker_lost_at` on the app, workers/consumer.py)."""

from __future__ import annotations

import logging

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.worker.request import Request
from celery.worker.state import task_ready

from storage.errors import ValidationError
from storage.json_values import check_arguments
from workers.retries import UNREACHABLE, retry_delay

log = logging.getLogger(__name__)
TIME_LIMITS = (SoftTimeLimitExceeded, TimeLimitExceeded)


class TrainlogRequest(Request):
    _refused = False
    _sent_again = False

    def revoked(self) -> bool:
        """Celery asks this before handing a job to the pool (and a subclass it builds per
        task replaces `execute_using_pool`): a refused job counts as revoked, and so is
        dropped quietly after `_refuse` failed it."""
        if self._refused or super().revoked():
            return True
        try:
            check_arguments(self.args, self.kwargs, raw=_raw_json(self.body))
        except ValidationError as error:
            self._refused = True
            self._refuse(error)
            return True
        return False

    def _refuse(self, error: ValidationError) -> None:
        """Fail the job here: the failure log, the result backend, the event, the ack."""
        self.task.on_failure(error, self.id, self.args, self.kwargs, None)
        try:
            raise error
        except ValidationError:
            self.on_failure(ExceptionInfo(), send_failed_event=True, return_ok=False)

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        """`return_ok` False: the error came from around the job, not from the job itself."""
        if self._sent_again:  # a hard time limit reaches both handlers, in either order
            return
        error = exc_info.exception
        if isinstance(error, ExceptionWithTraceback):
            error = error.exc
        if isinstance(error, TIME_LIMITS) and self._outlived_broker():
            self._send_again(f"{type(error).__name__} after the worker lost the broker")
            return
        if not return_ok and self.task.acks_late and isinstance(error, UNREACHABLE):
            self._send_again(f"{error!r} around the job (broker or result backend unreachable)")
            return
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if self._sent_again:
            return
        if not soft and self._outlived_broker():
            self._send_again(f"hard time limit ({timeout:g}s) after the worker lost the broker")
            return
        super().on_timeout(soft, timeout)

    def _outlived_broker(self) -> bool:
        """Whether the worker lost its broker connection after this job started."""
        lost_at = getattr(self.task.app, "broker_lost_at", None)  # TrainlogCelery's
        return lost_at is not None and self.time_start is not None and lost_at >= self.time_start

    def _send_again(self, why: str) -> None:
        task_ready(self)
        self._sent_again = True
        log.warning("%s[%s]: %s: it will run again", self.task_name, self.id, why)
        self._run_again()

    def _run_again(self) -> None:
        """Send the job again a second or two later (a result backend still down must not
        spin it through the worker); if the broker is down too, put its message back: it is
        redelivered, at the latest after the visibility timeout."""
        delay = retry_delay(1, self.task.settings.retry_backoff_max)
        try:
            self.task.signature_from_request(self._context, countdown=delay).apply_async()
        except Exception:
            self.reject(requeue=True)
            return
        self.acknowledge()


def _raw_json(body: object) -> bytes | None:
    """The message body as JSON bytes, when Celery kept it undecoded (protocol 2)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", errors="surrogatepass")
    return None
