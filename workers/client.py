"""Producer side for Python services: send trainlog jobs by their public names.

Services that do not install trainlog need only Celery and the broker URL:
    Celery(broker=URL, backend=URL).send_task("trainlog.save_session", args=[payload])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import celery.exceptions
import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc
from celery import Celery
from celery.result import AsyncResult

from storage.errors import JobTimeout, Unavailable
from storage.json_values import check_arguments
from storage.options import shown_url
from storage.settings import Settings
from tasks.registry import BY_FUNCTION, Job, find_job
from workers.config import broker_and_backend, celery_config, prepare_embedded_broker
from workers.summaries import arguments_repr

RESULT_POLL_SECONDS = 0.05
# what a broker or result backend that cannot be reached raises, directly or as the cause
CONNECTION_ERRORS = (
    OSError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
)


class TrainlogClient:
    """Enqueue jobs without importing the task code; results come back as JSON summaries."""

    def __init__(self, settings: Settings) -> None:
        broker, backend = broker_and_backend(settings)
        self.broker, self.backend = broker, backend
        prepare_embedded_broker(settings)
        self.celery = Celery(
            "trainlog-client", broker=broker, backend=backend, set_as_current=False
        )
        config = celery_config(settings)
        self.celery.conf.update({k: v for k, v in config.items() if not k.startswith("beat")})

    def send(self, job: str, *args: Any, **kwargs: Any) -> AsyncResult:
        return self._send(find_job(job), args, kwargs)

    def send_follow_up(self, run: Callable[..., Any], *args: Any, countdown: float) -> AsyncResult:
        """Queue the job whose plain function is `run` (an internal one too, as a job queues
        its follow-ups), to run no sooner than `countdown` seconds from now."""
        return self._send(BY_FUNCTION[run], args, {}, countdown=countdown)

    def _send(
        self, job: Job, args: Sequence[Any], kwargs: dict[str, Any], *, countdown: float = 0
    ) -> AsyncResult:
        name = job.name
        check_arguments(args, kwargs)  # the worker would refuse them: say so now
        try:
            return self.celery.send_task(
                name,
                args=list(args),
                kwargs=kwargs,
                queue=job.queue,
                countdown=countdown or None,
                **arguments_repr(args, kwargs),
            )
        except Exception as error:
            lost = _unreachable(
                error, f"cannot send {name}: the broker or result backend", self.broker
            )
            if lost is None:
                raise
            raise lost from None

    def wait(self, result: AsyncResult, timeout: float, *, propagate: bool = True) -> Any:
        """The job's result (its error raised when `propagate`); JobTimeout, naming the job and
        its state, after `timeout` seconds; Unavailable, naming it, when the result backend
        cannot be reached."""
        try:
            # interval: how often a polling backend (SQLite, embedded) is asked; default 0.5 s
            value = result.get(timeout=timeout, propagate=False, interval=RESULT_POLL_SECONDS)
        except celery.exceptions.TimeoutError:  # Celery chains it on a builtin TimeoutError
            raise JobTimeout(
                f"job {result.id} is not finished after {timeout:g} s (state "
                f"{self._state(result)}); it may still run",
                key=result.id,
            ) from None
        except Exception as error:
            lost = _unreachable(
                error,
                f"cannot read the result of job {result.id}: the result backend",
                self.backend,
            )
            if lost is None:
                raise
            # Celery's cleanup in AsyncResult.__del__ would retry the lost backend and print
            # a "Retry limit exceeded" RuntimeError when the result is collected
            result.backend = None
            raise lost from None
        if propagate:
            result.maybe_throw()  # the job's own error, after the backend answered
        return value

    @staticmethod
    def _state(result: AsyncResult) -> str:
        try:
            return str(result.state)
        except Exception:
            return "unknown"

    def run(self, job: str, *args: Any, timeout: float = 300, **kwargs: Any) -> Any:
        """Send and wait for the result (raises the job's error on failure)."""
        return self.wait(self.send(job, *args, **kwargs), timeout)

    def close(self) -> None:
        self.celery.close()


def _unreachable(error: Exception, what: str, url: str) -> Unavailable | None:
    """Unavailable naming `url` when a connection error is behind `error` (Celery wraps some
    in a RuntimeError); None for any other error."""
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, CONNECTION_ERRORS):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    return Unavailable(f"{what} at {shown_url(url)} cannot be reached ({seen})")
