"""Transient errors retry with backoff up to the bound; permanent ones fail at once; both are
recorded. Runs the real task code eagerly (no broker) for speed."""

from __future__ import annotations

import json

import pytest
from celery.exceptions import Reject, SoftTimeLimitExceeded
from kombu.exceptions import OperationalError

from storage.errors import LockTimeout, Unavailable
from storage.settings import Settings
from storage.stores import Stores
from tasks import jobs, sessions
from tasks.failures import stored_arguments
from tests.factories import session_payload
from workers.app import create_app
from workers.retries import retry_delay


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings.with_(max_retries=2, retry_backoff_max=1))
    return app  # tasks run with .apply(): in this process, retries included


def test_transient_error_retries_then_fails_and_is_recorded(app, monkeypatch) -> None:
    calls = []

    def flaky(stores, payload):
        calls.append(1)
        raise LockTimeout("could not lock activities.csv", path="activities.csv")

    monkeypatch.setattr(sessions, "save_session", flaky)
    monkeypatch.setattr("workers.task.retry_delay", lambda attempt, cap: 0)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.failed() and isinstance(result.result, LockTimeout)
    assert len(calls) == 3  # the first run and two retries
    error = result.result
    assert str(error).startswith("LOCK_TIMEOUT: could not lock activities.csv (still failing")
    assert "after 2 retries" in error.message and error.path == "activities.csv"


def test_transient_error_then_success(app, monkeypatch) -> None:
    real, calls = sessions.save_session, []

    def flaky_once(stores, payload):
        calls.append(1)
        if len(calls) == 1:
            raise LockTimeout("busy", path="x")
        return real(stores, payload)

    monkeypatch.setattr(sessions, "save_session", flaky_once)
    monkeypatch.setattr("workers.task.retry_delay", lambda attempt, cap: 0)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.get()["sessionId"] and len(calls) == 2


def test_a_soft_time_limit_is_deadline_exceeded_and_retried(app, monkeypatch) -> None:
    """It can fire between a save's rows and its file: the retry writes the file."""
    real, calls = sessions.save_session, []

    def cut_once(stores, payload):
        calls.append(1)
        if len(calls) == 1:
            real(stores, payload)  # rows and file written, then the limit fires
            raise SoftTimeLimitExceeded()
        return real(stores, payload)

    monkeypatch.setattr(sessions, "save_session", cut_once)
    monkeypatch.setattr("workers.task.retry_delay", lambda attempt, cap: 0)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.get()["sessionId"] and len(calls) == 2

    def always_cut(stores, payload):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(sessions, "save_session", always_cut)
    failed = app.tasks["trainlog.save_session"].apply(args=[session_payload(2)], throw=False)
    assert failed.failed() and str(failed.result).startswith("DEADLINE_EXCEEDED:")
    assert "soft time limit" in str(failed.result) and "still failing after 2" in str(failed.result)


def test_permanent_error_fails_at_once_and_is_recorded(app, settings: Settings) -> None:
    result = app.tasks["trainlog.save_session"].apply(args=[{"_id": "nope"}])
    assert result.failed()
    failures = list(Stores(settings).repository("task_failures").iterate())
    assert len(failures) == 1 and failures[0]["errorCode"] == "VALIDATION"
    assert failures[0]["arguments"]["args"] == [{"_id": "nope"}]


def test_a_bug_is_recorded_as_internal_naming_its_class(
    app, settings: Settings, monkeypatch
) -> None:
    def broken(stores, payload):
        return 1 / 0

    monkeypatch.setattr(sessions, "save_session", broken)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.failed() and isinstance(result.result, ZeroDivisionError)
    failures = list(Stores(settings).repository("task_failures").iterate())
    assert [(f["errorCode"], f["error"]) for f in failures] == [
        ("INTERNAL", "ZeroDivisionError: division by zero")
    ]


def test_secrets_never_reach_the_failure_log(app, settings: Settings) -> None:
    app.tasks["trainlog.upsert_rows"].apply(
        args=[
            "tokens",
            [{"athleteId": "a", "provider": "strava", "accessToken": "s3cr3t", "bogus": 1}],
        ]
    )
    failure = next(iter(Stores(settings).repository("task_failures").iterate()))
    assert "s3cr3t" not in str(failure) and failure["errorCode"] == "VALIDATION"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (["tokens", [{"athleteId": "a", "provider": "p", "acessTokn": "s3cr3t"}]], {}),
        ([], {"table": "tokens", "rows": [{"athleteId": "a", "provider": "p", "x": "s3cr3t"}]}),
        (["goals", [{"goalId": "g", "client-Secret": "s3cr3t", "API_KEY": "s3cr3t"}]], {}),
        ([{"refresh_token": "s3cr3t", "nested": [{"Password": "s3cr3t"}]}], {}),
    ],
    ids=["misspelt token field", "secret table by keyword", "secret-looking names", "nested"],
)
def test_stored_arguments_mask_secrets_however_they_are_named(
    args: list[object], kwargs: dict[str, object]
) -> None:
    stored = stored_arguments(args, kwargs)
    assert "s3cr3t" not in json.dumps(stored)
    assert "***" in json.dumps(stored)


def test_stored_arguments_keep_what_is_not_secret_and_omit_what_json_cannot_hold() -> None:
    kept = stored_arguments(["tokens", [{"athleteId": "ath-9", "provider": "strava"}]], {})
    assert kept["args"][1] == [{"athleteId": "ath-9", "provider": "strava"}]
    assert stored_arguments([{"sessionId": "s-1"}], {})["args"] == [{"sessionId": "s-1"}]
    for bad in (float("nan"), "\ud800"):
        assert "omitted" in stored_arguments([bad], {})


def test_backoff_grows_and_is_capped() -> None:
    assert all(0.5 <= retry_delay(0, 60) <= 1 for _ in range(20))
    assert all(8 <= retry_delay(4, 60) <= 16 for _ in range(20))
    assert all(retry_delay(20, 60) <= 60 for _ in range(20))


def test_a_follow_up_the_broker_refuses_is_unavailable_naming_it(settings, monkeypatch) -> None:
    """A real kombu publish to a closed port, with the wait cut to one retry (results in SQL:
    outside a worker, a Redis result backend would subscribe, and fail, first)."""
    monkeypatch.setattr("workers.task.FOLLOW_UP_RETRY_POLICY", {"max_retries": 1})
    settings.home.mkdir(parents=True, exist_ok=True)
    results = f"db+sqlite:///{settings.home / 'results.sqlite'}"
    app = create_app(settings.with_(broker_url="redis://127.0.0.1:1/0", result_backend=results))
    task = app.tasks["trainlog.save_session"]
    with pytest.raises(Unavailable, match=r"cannot queue trainlog\.recompute_pending") as caught:
        task.enqueue(jobs.recompute_pending)
    assert caught.value.transient


def test_a_retry_that_could_not_be_sent_puts_the_message_back(app, monkeypatch) -> None:
    """Celery drops the message (Reject without requeue) when it cannot send the retry; the
    job would be lost. Ours requeues it."""
    task = app.tasks["trainlog.save_session"]

    def unsent(*args, **kwargs):
        raise Reject(OperationalError("Connection refused"), requeue=False)

    monkeypatch.setattr(task, "retry", unsent)
    outcome = task._retry(LockTimeout("busy", path="x"), 0)
    assert isinstance(outcome, Reject) and outcome.requeue
    assert isinstance(outcome.reason, OperationalError)
