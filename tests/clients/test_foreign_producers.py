"""Producers that do not import trainlog send its documented jobs to a real worker on Redis:
celery-node from npm and a plain Celery in a virtualenv of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import run_client
from tests.factories import activity, session_payload
from tests.pipeline.conftest import Pipeline, wait_for

Send = Callable[[str, list[Any], str], dict[str, Any]]


@pytest.fixture(params=["celery-node", "python-celery"])
def send(request: pytest.FixtureRequest, redis_pipeline: Pipeline) -> Send:
    """send(job, args, queue) through a foreign producer: its outcome as that client saw it."""
    broker = str(redis_pipeline.settings.broker_url)
    if request.param == "celery-node":
        script: Path = request.getfixturevalue("node_producer")
        return lambda job, args, queue: run_client(
            ["node", str(script), broker, f"trainlog.{job}", json.dumps(args), queue, "60000"]
        )
    python: Path = request.getfixturevalue("foreign_python")
    script = Path(__file__).with_name("python_producer.py")
    return lambda job, args, queue: run_client(
        [str(python), str(script), broker, f"trainlog.{job}", json.dumps(args), queue, "60"]
    )


def test_a_saved_session_lands_in_sql_and_json(send: Send, redis_pipeline: Pipeline) -> None:
    payload = session_payload(41, _id=str(uuid.uuid4()))
    outcome = send("save_session", [payload], "default")
    assert outcome["status"] == "SUCCESS", outcome
    assert outcome["result"]["sessionId"] == payload["_id"]
    assert redis_pipeline.stores.sessions.get(payload["_id"]) is not None
    assert Path(outcome["result"]["jsonPath"]).is_file()


def test_a_refused_payload_reaches_the_client_with_its_code(send: Send) -> None:
    outcome = send("save_session", [session_payload(42, week="three")], "default")
    assert outcome["status"] == "FAILURE", outcome
    error = outcome["error"]
    message = error.get("exc_message") or error.get("message")
    text = message[0] if isinstance(message, list) else message
    assert text.startswith("VALIDATION: "), outcome
    assert "week" in text
    assert error.get("exc_type", error.get("type")) == "ValidationError"
    assert error.get("isException", True)  # Celery rebuilds it as an Exception subclass


def test_ingest_then_recompute(send: Send, redis_pipeline: Pipeline) -> None:
    athlete = f"ath-foreign-{uuid.uuid4().hex[:8]}"
    rows = [activity(n, athlete=athlete, day=f"2026-05-{1 + n:02d}") for n in range(3)]
    ingested = send("ingest_activities", [rows], "default")
    assert ingested["status"] == "SUCCESS" and ingested["result"]["upserted"] == 3, ingested
    daily = send("recompute_daily_metrics", [athlete, None], "metrics")
    assert daily["status"] == "SUCCESS", daily
    assert daily["result"] == {"athleteId": athlete, "from": "2026-05-01", "days": 3}
    table = redis_pipeline.stores.repository("daily_metrics")
    assert wait_for(lambda: len(table.list({"athleteId": athlete}).rows) == 3)


def test_a_stale_version_reaches_the_client_as_a_conflict(send: Send) -> None:
    """Optimistic concurrency as a producer without trainlog uses it: it sends the version it
    read, and a row changed meanwhile comes back CONFLICT, its write not made."""
    goal = {"goalId": f"goal-{uuid.uuid4().hex[:8]}", "athleteId": "ath-v", "title": "5k < 20"}
    assert send("upsert_rows", ["goals", [goal]], "default")["status"] == "SUCCESS"
    edited = {**goal, "title": "5k < 19:30", "version": 1}
    assert send("upsert_rows", ["goals", [edited]], "default")["status"] == "SUCCESS"
    outcome = send("upsert_rows", ["goals", [{**edited, "title": "5k < 21"}]], "default")
    assert outcome["status"] == "FAILURE", outcome
    message = outcome["error"].get("exc_message") or outcome["error"].get("message")
    text = message[0] if isinstance(message, list) else message
    assert text.startswith("CONFLICT: goals ") and "is at version 2, not 1" in text, outcome
