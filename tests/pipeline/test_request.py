"""workers.request.TrainlogRequest, in the worker's main process: a job whose pool process could
not reach the broker or the result backend around the job (to mark it started, to store its
result) is sent again, instead of being acknowledged as failed and so lost, and so is a job
whose time limit ran out after the worker lost the broker while it ran. A job that failed for
any other reason is acknowledged as before. (Through a real worker and a Redis killed
mid-run: tests/pipeline/test_broker_outage.py.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
import redis.exceptions
from billiard.einfo import ExceptionInfo
from celery.contrib.testing.mocks import TaskMessage
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from storage.settings import Settings
from workers.app import TrainlogCelery, create_app
from workers.config import embedded_folders
from workers.request import TrainlogRequest


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TrainlogCelery]:
    app = create_app(Settings.for_home(tmp_path / "home"))
    yield app
    app.close()


def ping_request(app: TrainlogCelery) -> tuple[TrainlogRequest, Mock, Mock]:
    """A ping as the worker's main process holds it: (request, on_ack, on_reject)."""
    on_ack, on_reject = Mock(), Mock()
    message = TaskMessage("trainlog.ping", id="job-1")
    # sent straight to its queue (the default exchange): no binding to look up, which kombu
    # would remember process-wide and not write again into the next test's broker folder
    message.delivery_info = {"exchange": "", "routing_key": "default", "priority": 0}
    message.properties = {}
    request = TrainlogRequest(
        message,
        app=app,
        task=app.tasks["trainlog.ping"],
        on_ack=on_ack,
        on_reject=on_reject,
    )
    return request, on_ack, on_reject


def fail(request: TrainlogRequest, error: Exception, *, return_ok: bool = False) -> None:
    try:
        raise error
    except Exception:
        request.on_failure(ExceptionInfo(), return_ok=return_ok)


def failed_request(app: TrainlogCelery, error: Exception) -> tuple[Mock, Mock]:
    """A ping whose pool process reported `error` from around the job: (on_ack, on_reject)."""
    request, on_ack, on_reject = ping_request(app)
    fail(request, error)
    return on_ack, on_reject


def queued(app: TrainlogCelery) -> list[dict[str, Any]]:
    folder = embedded_folders(app.settings)["queue"]
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.msg"))]


@pytest.mark.parametrize(
    "error",
    [redis.exceptions.ConnectionError("Connection refused"), ConnectionResetError()],
    ids=["redis-connection", "socket"],
)
def test_a_job_that_could_not_reach_redis_is_sent_again_later(
    app: TrainlogCelery, error: Exception
) -> None:
    on_ack, on_reject = failed_request(app, error)
    again = queued(app)
    assert [message["headers"]["id"] for message in again] == ["job-1"]
    assert again[0]["headers"]["task"] == "trainlog.ping" and again[0]["headers"]["eta"]
    on_ack.assert_called_once()  # the new message carries the job: the old one is done
    on_reject.assert_not_called()


def test_with_the_broker_down_too_its_message_is_put_back(
    app: TrainlogCelery, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_args: Any, **_kwargs: Any) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr("celery.canvas.Signature.apply_async", broker_down)
    on_ack, on_reject = failed_request(app, redis.exceptions.ConnectionError("refused"))
    on_reject.assert_called_once()
    assert on_reject.call_args.args[-1] is True  # requeue
    on_ack.assert_not_called()


def test_a_job_that_failed_otherwise_is_acknowledged_as_failed(app: TrainlogCelery) -> None:
    on_ack, on_reject = failed_request(app, ValueError("not an outage"))
    assert queued(app) == []
    on_ack.assert_called_once()
    on_reject.assert_not_called()
    assert app.AsyncResult("job-1").state == "FAILURE"


def started_request(app: TrainlogCelery, broker_lost: float | None) -> tuple[Any, Mock, Mock]:
    """A ping that started 5 s ago; the worker lost the broker `broker_lost` s after that."""
    request, on_ack, on_reject = ping_request(app)
    request.time_start = time.time() - 5
    if broker_lost is not None:
        app.broker_lost_at = request.time_start + broker_lost
    return request, on_ack, on_reject


@pytest.mark.parametrize("limit", ["hard", "soft"])
def test_a_time_limit_that_ran_out_after_a_broker_loss_sends_the_job_again(
    app: TrainlogCelery, limit: str
) -> None:
    request, on_ack, on_reject = started_request(app, broker_lost=1)
    if limit == "hard":  # the pool reports it to both handlers, in either order
        request.on_timeout(soft=False, timeout=8)
        fail(request, TimeLimitExceeded(8))
        request.on_timeout(soft=False, timeout=8)
    else:  # raised in the job: it reaches the main process as the job's own failure
        fail(request, SoftTimeLimitExceeded(), return_ok=True)
    assert [message["headers"]["id"] for message in queued(app)] == ["job-1"]
    on_ack.assert_called_once()
    on_reject.assert_not_called()
    assert app.AsyncResult("job-1").state != "FAILURE"


@pytest.mark.parametrize("broker_lost", [None, -1], ids=["no-loss", "loss-before-start"])
def test_a_time_limit_with_no_broker_loss_while_the_job_ran_is_a_failure(
    app: TrainlogCelery, broker_lost: float | None
) -> None:
    request, on_ack, on_reject = started_request(app, broker_lost=broker_lost)
    request.on_timeout(soft=False, timeout=8)
    assert queued(app) == []
    on_ack.assert_called_once()
    on_reject.assert_not_called()
    assert app.AsyncResult("job-1").state == "FAILURE"
