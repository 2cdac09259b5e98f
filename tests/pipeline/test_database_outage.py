"""A database that goes away for a while: jobs retry (UNAVAILABLE is transient) and finish."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.errors import Unavailable
from storage.settings import Settings
from storage.stores import Stores
from tests.factories import session_payload
from tests.pipeline.conftest import make_settings
from tests.services import PG_ADMIN_URL
from workers.client import TrainlogClient
from workers.process import WorkerProcess


def set_connections(database: str, allowed: bool) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(
            f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}'
        )
        if not allowed:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": database},
            )
    admin.dispose()


def _home_on(
    tmp_path: Path, postgres_url: str, *, retries: int, backoff: float
) -> tuple[Settings, str, TrainlogClient]:
    """A home whose SQL is the test's PostgreSQL database, ready; the database's name and a
    client."""
    settings = make_settings(
        tmp_path / "home",
        None,
        database_url=postgres_url,
        max_retries=retries,
        retry_backoff_max=backoff,
    )
    name = sa.engine.make_url(postgres_url).database
    assert name is not None
    stores = Stores(settings)
    stores.initialize()
    stores.close()
    return settings, name, TrainlogClient(settings)


def test_jobs_retry_through_a_database_outage(tmp_path: Path, postgres_url: str) -> None:
    settings, name, client = _home_on(tmp_path, postgres_url, retries=8, backoff=2)
    payload = session_payload(21)
    with WorkerProcess(settings, name="outage") as worker:
        set_connections(name, allowed=False)
        try:
            result = client.send("save_session", payload)
            deadline = time.monotonic() + 30
            while "transient UNAVAILABLE" not in worker.log_text() and (
                time.monotonic() < deadline
            ):
                time.sleep(0.1)
            assert "transient UNAVAILABLE" in worker.log_text()
        finally:
            set_connections(name, allowed=True)
        value = result.get(timeout=90)
    client.close()
    assert value["sessionId"] == payload["_id"]
    stores = Stores(settings)
    assert stores.sessions.count() == 1 and stores.sessions.get(payload["_id"]).version == 1
    assert Path(value["jsonPath"]).exists()
    stores.close()


def test_a_job_that_outlasts_its_retries_says_so(tmp_path: Path, postgres_url: str) -> None:
    """The database stays away: the save fails UNAVAILABLE once its one retry is spent, and
    the error a producer gets says it was retried and that sending it again is safe."""
    settings, name, client = _home_on(tmp_path, postgres_url, retries=1, backoff=1)
    with WorkerProcess(settings, name="outage-for-good"):
        set_connections(name, allowed=False)
        try:
            with pytest.raises(Unavailable) as caught:
                client.run("save_session", session_payload(22), timeout=90)
        finally:
            set_connections(name, allowed=True)
    client.close()
    message = str(caught.value)
    assert message.startswith("UNAVAILABLE: database unavailable"), message
    assert "still failing after 1 retry;" in message and "sending the job again is safe" in message
