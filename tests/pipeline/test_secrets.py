"""Secrets sent by a plain Celery producer (Celery's own argument reprs, no trainlog client)
through a real worker: a wrongly typed token and a misspelt token field reach no error,
result, failure record, worker log or task event; the SQLite files that hold them, and the
embedded broker's messages, are their owner's only."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner

from storage.csv.storage import CsvStorage
from storage.locks import acquire_lock
from storage.settings import settings_env
from storage.tables import get_table
from tests.pipeline.conftest import make_settings, storage_and_client, wait_for
from tests.pipeline.monitor import Monitor
from tests.services import redis_database
from workers.cli import main
from workers.process import WorkerProcess

SECRETS = ("s3cret-refresh-1", "s3cret-access-2", "s3cret-nested-3")
ROWS = [
    {"athleteId": "ath-1", "provider": "strava", "refreshToken": [SECRETS[0]]},
    {"athleteId": "ath-2", "provider": "garmin", "access_token": SECRETS[1]},
    {"athleteId": "ath-3", "provider": "polar", "scope": {"x": SECRETS[2]}},
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=["embedded", "redis"])
def broker(request: pytest.FixtureRequest) -> Any:
    if request.param == "embedded":
        yield None
    else:
        with redis_database() as url:
            yield url


def test_a_secret_reaches_no_error_record_log_or_event(tmp_path: Path, broker: str | None) -> None:
    settings = make_settings(tmp_path / "home", broker, table_backends={"tokens": "sql"})
    with storage_and_client(settings) as (stores, client):
        worker = WorkerProcess(settings, name="secrets").start()
        monitor = Monitor(client)
        try:
            plain = Celery(broker=client.broker, backend=client.backend, set_as_current=False)
            if settings.broker_is_embedded:  # the same folders, nothing else of trainlog's
                for name in ("broker_transport", "broker_transport_options"):
                    plain.conf[name] = client.celery.conf[name]
            seen: list[str] = []
            for row in ROWS:
                sent = plain.send_task(
                    "trainlog.upsert_rows", args=["tokens", [row]], queue="default"
                )
                seen.append(str(sent.get(timeout=60, propagate=False)))
                assert sent.state == "FAILURE" and seen[-1].startswith("VALIDATION:")
            plain.close()
            records = CliRunner().invoke(main, ["failures", "--json"], env=settings_env(settings))
        finally:
            worker.stop()
            monitor.close()
        assert "tokens" in seen[0] and "refreshToken" in seen[0]
        assert records.exit_code == 0, records.output
        failed = json.loads(records.output)
        assert len(failed) == len(ROWS)
        events = json.dumps(monitor.events, default=str)
        assert "task-received" in events and "task-failed" in events
        for place, text in {
            "result": "\n".join(seen),
            "failure record": records.output,
            "worker log": worker.log_text(),
            "task event": events,
        }.items():
            for secret in SECRETS:
                assert secret not in text, f"{secret} in the {place}"
        database = Path(settings.database_url.removeprefix("sqlite:///"))
        for path in (database, database.with_name(database.name + "-wal")):
            assert mode(path) == 0o600, path
        if settings.broker_is_embedded:
            assert mode(settings.broker_folder) == 0o700
            assert mode(settings.home / "results.sqlite") == 0o600
        assert stores.repository("tokens").list().rows == []


def test_a_retried_job_shows_no_secret_in_its_task_sent_event(
    tmp_path: Path, broker: str | None
) -> None:
    """A retry is a message the worker sends itself: Celery's own repr of its arguments put
    a token row in the task-sent event (Flower) and in the message's headers."""
    settings = make_settings(tmp_path / "home", broker, lock_timeout=0.5, retry_backoff_max=1)
    row = {"athleteId": "ath-r", "provider": "strava", "accessToken": SECRETS[1]}
    with storage_and_client(settings) as (_stores, client):
        worker = WorkerProcess(settings, name="retry-secrets").start()
        monitor = Monitor(client)
        lock = CsvStorage(settings.data_dir).lock_path(get_table("tokens"))
        try:
            with acquire_lock(lock, exclusive=True, timeout=5):  # the job times out, retries
                sent = client.send("upsert_rows", "tokens", [row])
                assert wait_for(
                    lambda: any(e.get("type") == "task-retried" for e in monitor.events), 30
                )
            assert client.wait(sent, timeout=60)["upserted"] == 1
        finally:
            worker.stop()
            monitor.close()
        retried = [e for e in monitor.events if e.get("type") == "task-sent"]
        assert retried, "the retry sent no task-sent event"
        assert retried[0]["args"] == "['tokens', [1 item]]"
        events = json.dumps(monitor.events, default=str)
        assert SECRETS[1] not in events and SECRETS[1] not in worker.log_text()
