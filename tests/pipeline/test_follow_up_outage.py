"""Redis killed while a save is about to send its follow-up (the metrics recompute): a short
outage is waited out, a long one sends the save round again; either way the save succeeds,
nothing is recorded as failed, and the athlete's metrics are recomputed. Celery's own publish
gave up after 0.6 s, failing a save whose data was stored and leaving the recompute unsent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage.coordination import PENDING_LOCK
from storage.sql.named_locks import holding
from tasks.failures import list_failures
from tests.factories import session_payload
from tests.pipeline.conftest import redis_outage, wait_for, wait_for_sessions
from workers.process import WorkerProcess

ATHLETE = "athlete-outage"


@pytest.mark.parametrize("seconds", [3, 14], ids=["waited-out", "past-the-publish-retries"])
def test_a_follow_up_sent_while_redis_is_down_still_runs(tmp_path: Path, seconds: float) -> None:
    with redis_outage(
        tmp_path,
        lock_timeout=60.0,
        recompute_delay=1,
        visibility_timeout=60,  # a flush looks lost only after 120 s
    ) as outage:
        stores = outage.stores
        with WorkerProcess(outage.settings, name="follow-up", concurrency=1):
            with holding(stores.database, [PENDING_LOCK], timeout=5):
                result = outage.client.send("save_session", session_payload(7, userId=ATHLETE))
                wait_for_sessions(stores, 1, timeout=30)  # its data is in; it waits on the lock
                time.sleep(0.5)
                outage.redis.kill()
            time.sleep(seconds)  # the save marks the athlete and tries to send the recompute
            outage.redis.start()
            daily = stores.repository("daily_metrics")
            assert wait_for(lambda: daily.list({"athleteId": ATHLETE}).rows, 40), "not recomputed"
            assert wait_for(lambda: result.state == "SUCCESS", 30), f"the save is {result.state}"
        assert list_failures(stores) == []
        assert stores.sessions.count() == 1
