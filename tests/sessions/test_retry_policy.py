"""Transient errors retry with backoff up to the bound; permanent ones fail at once; both are
recorded. Runs the real task code eagerly (no broker) for speed."""

from __future__ import annotations

import pytest

from storage.errors import LockTimeout
from storage.settings import Settings
from storage.stores import Stores
from tasks import sessions
from tasks.base import retry_delay
from tests.factories import session_payload
from workers.app import create_app


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
    monkeypatch.setattr("tasks.base.retry_delay", lambda attempt, cap: 0)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.failed() and isinstance(result.result, LockTimeout)
    assert len(calls) == 3  # the first run and two retries


def test_transient_error_then_success(app, monkeypatch) -> None:
    real, calls = sessions.save_session, []

    def flaky_once(stores, payload):
        calls.append(1)
        if len(calls) == 1:
            raise LockTimeout("busy", path="x")
        return real(stores, payload)

    monkeypatch.setattr(sessions, "save_session", flaky_once)
    monkeypatch.setattr("tasks.base.retry_delay", lambda attempt, cap: 0)
    result = app.tasks["trainlog.save_session"].apply(args=[session_payload(1)], throw=False)
    assert result.get()["sessionId"] and len(calls) == 2


def test_permanent_error_fails_at_once_and_is_recorded(app, settings: Settings) -> None:
    result = app.tasks["trainlog.save_session"].apply(args=[{"_id": "nope"}])
    assert result.failed()
    failures = list(Stores(settings).repository("task_failures").iterate())
    assert len(failures) == 1 and failures[0]["errorCode"] == "VALIDATION"
    assert failures[0]["arguments"]["args"] == [{"_id": "nope"}]


def test_secrets_never_reach_the_failure_log(app, settings: Settings) -> None:
    app.tasks["trainlog.upsert_rows"].apply(
        args=[
            "tokens",
            [{"athleteId": "a", "provider": "strava", "accessToken": "s3cr3t", "bogus": 1}],
        ]
    )
    failure = next(iter(Stores(settings).repository("task_failures").iterate()))
    assert "s3cr3t" not in str(failure) and failure["errorCode"] == "VALIDATION"


def test_backoff_grows_and_is_capped() -> None:
    assert all(0.5 <= retry_delay(0, 60) <= 1 for _ in range(20))
    assert all(8 <= retry_delay(4, 60) <= 16 for _ in range(20))
    assert all(retry_delay(20, 60) <= 60 for _ in range(20))
