"""The base of every trainlog task: settings and storage from the app, the retry policy
(transient PersistenceErrors back off exponentially up to a cap), failures recorded."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from celery import Task, current_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from storage.errors import (
    Conflict,
    DeadlineExceeded,
    NotFound,
    PersistenceError,
    Unavailable,
    ValidationError,
)
from storage.json_values import check_arguments
from storage.settings import Settings
from storage.stores import Stores
from tasks.failures import record_failure
from tasks.registry import name_of
from workers.request import TrainlogRequest
from workers.retries import FOLLOW_UP_RETRY_POLICY, UNREACHABLE, gave_up, retry_delay

log = logging.getLogger(__name__)


class TrainlogTask(Task):
    abstract = True
    Request = TrainlogRequest  # refuses bad arguments in the main process, before the pool
    # what the caller sent is wrong: recorded and returned as any failure, but logged by Celery
    # as "raised expected", one line at INFO, not a traceback at ERROR, so a producer sending
    # bad messages does not fill the log with alarms meant for the operator. Not AlreadyExists:
    # no job adds a row the caller names, so a duplicate key in a job is a race of our writes
    throws = (ValidationError, NotFound, Conflict)

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.settings  # set by workers.app.create_app
        return settings

    @property
    def stores(self) -> Stores:
        """One Stores per process (a forked pool child opens its own connections)."""
        stores: Stores = self.app.process_stores()  # workers.app.TrainlogCelery
        return stores

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return self._call_nested(args, kwargs)
        try:
            try:
                self._check_arguments(args, kwargs)
                return super().__call__(*args, **kwargs)
            except SoftTimeLimitExceeded:
                raise DeadlineExceeded(
                    f"{self.name} ran out of its soft time limit; what it completed stays "
                    "done, and its retry does the rest"
                ) from None
        except PersistenceError as error:
            retries = self.request.retries or 0
            if error.transient and retries < self.settings.max_retries:
                log.warning(
                    "%s: transient %s, retry %d: %s",
                    self.name,
                    error.code,
                    retries + 1,
                    error.message,
                )
                raise self._retry(error, retries) from None
            if error.transient and retries:
                raise gave_up(error, retries) from error
            raise

    def _call_nested(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run inside another task (Celery's celery.map, celery.starmap, celery.chunks) or a
        plain call: no message of its own to retry or fail, so a failure is recorded here,
        under the outer task's id, and raised to it."""
        try:
            check_arguments(args, kwargs)
            self._check_arguments(args, kwargs)
            return super().__call__(*args, **kwargs)
        except Exception as error:
            outer = current_task.request if current_task else None
            self.on_failure(error, getattr(outer, "id", None), args, kwargs, None)
            raise

    def _retry(self, error: PersistenceError, retries: int) -> BaseException:
        """The Retry to raise; if the retry could not be sent (the broker went away), a
        requeueing Reject: Celery's own drops the message, and with it the job."""
        try:
            return self.retry(
                exc=error,
                max_retries=self.settings.max_retries,
                countdown=retry_delay(retries, self.settings.retry_backoff_max),
                throw=False,
            )
        except Reject as unsent:
            log.warning("%s: its retry could not be sent (%s): requeued", self.name, unsent)
            return Reject(unsent.reason, requeue=True)

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.run)  # one task object per process: built once

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A message from a producer that got the job's arguments wrong (sent by name, so
        Celery could not check them) is a VALIDATION failure naming them, not a TypeError."""
        signature = self._signature
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            unknown = sorted(set(kwargs) - set(signature.parameters))
            extra = f"; unknown keyword argument(s): {', '.join(unknown)}" if unknown else ""
            raise ValidationError(f"{self.name}: {error}{extra}", field="arguments") from None

    def on_failure(
        self, exc: BaseException, task_id: str | None, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        try:
            record_failure(
                self.stores,
                task_id=task_id,
                task_name=self.name,
                args=args,
                kwargs=kwargs,
                error=exc,
            )
        except Exception:  # the failure log must never hide the failure itself
            log.exception("could not record the failure of %s %s", self.name, task_id)

    @property
    def task_id(self) -> str | None:
        return self.request.id

    @property
    def worker(self) -> str | None:
        return self.request.hostname

    def enqueue(self, job: Callable[..., Any], *args: Any, countdown: float = 0) -> None:
        """Queue a follow-up job by its plain function (the registry names it, routing picks
        the queue), to run no sooner than `countdown` seconds from now. A broker still
        unreachable after FOLLOW_UP_RETRY_POLICY is UNAVAILABLE: transient, so this job runs
        again."""
        name = name_of(job)
        try:
            self.app.send_task(
                name,
                args=list(args),
                countdown=countdown or None,
                retry=True,
                retry_policy=FOLLOW_UP_RETRY_POLICY,
            )
        except UNREACHABLE as error:
            raise Unavailable(f"cannot queue {name}: broker unreachable ({error})") from None
