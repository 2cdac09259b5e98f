"""Property-based fuzz of task message envelopes against a real worker, on Redis and on the
embedded broker: after every generated message a good job still runs, and the message itself
ends as a result its producer can read (a job, or a VALIDATION refusal) or a dead letter."""

from __future__ import annotations

import json
import time
from typing import Any

from celery.result import AsyncResult
from hypothesis import HealthCheck, given, settings

from tests.pipeline.conftest import Pipeline
from tests.pipeline.envelopes import envelopes, usable_id
from tests.pipeline.hostile import dead_letters, put_raw

EXAMPLES = {"redis": 120, "embedded": 30}  # the embedded broker polls: ~0.3 s a message


def outcome(pipeline: Pipeline, message: dict[str, Any], letters_before: int) -> str:
    """'result: STATE' or 'dead letter', waiting up to 20 s for one of them."""
    task_id = usable_id(message)
    result = AsyncResult(task_id, app=pipeline.client.celery) if task_id else None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if result is not None and result.ready():
            return f"result: {result.state}"
        if dead_letters(pipeline.settings) > letters_before:
            return "dead letter"
        time.sleep(0.02)
    raise AssertionError(f"no result and no dead letter for {json.dumps(message)[:400]}")


def test_no_generated_envelope_stops_a_worker(pipeline: Pipeline) -> None:
    broker = "embedded" if pipeline.settings.broker_is_embedded else "redis"
    seen: dict[str, int] = {}

    @settings(
        max_examples=EXAMPLES[broker],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(envelopes())
    def check(message: dict[str, Any]) -> None:
        before = dead_letters(pipeline.settings)
        put_raw(pipeline.settings, message)
        kind = outcome(pipeline, message, before)
        seen[kind] = seen.get(kind, 0) + 1
        assert pipeline.worker.process is not None and pipeline.worker.process.poll() is None
        assert pipeline.client.run("ping", timeout=30)["pong"] is True

    check()
    print(f"{broker}: {sum(seen.values())} generated envelopes: {seen}")
