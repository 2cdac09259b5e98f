"""Many generated task message envelopes against one real worker: how each ended, which reasons
set messages aside, and whether the worker ever stopped. The test suite runs a short version
(tests/pipeline/test_fuzzed_envelopes.py); this one runs as many as asked.

    python -m bench.fuzz_envelopes --redis redis://127.0.0.1:6379/9 --examples 2000
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from celery.result import AsyncResult
from hypothesis import HealthCheck, given, settings

from storage.settings import Settings
from tests.pipeline.envelopes import envelopes, usable_id
from tests.pipeline.hostile import dead_letters, put_raw
from workers.client import TrainlogClient
from workers.process import WorkerProcess
from workers.queues import list_undeliverable, purge_undeliverable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=None, help="broker URL (default: embedded)")
    parser.add_argument("--examples", type=int, default=1000)
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="trainlog-fuzz-"))
    config = Settings.for_home(home)
    if options.redis:
        config = config.with_(broker_url=options.redis)
    purge_undeliverable(config)
    client = TrainlogClient(config)
    outcomes: Counter[str] = Counter()
    worker = WorkerProcess(config, name="fuzz").start()
    started = time.monotonic()

    @settings(
        max_examples=options.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(envelopes())
    def send(message: dict) -> None:  # type: ignore[type-arg]
        before = dead_letters(config)
        put_raw(config, message)
        task_id = usable_id(message)
        result = AsyncResult(task_id, app=client.celery) if task_id else None
        deadline = time.monotonic() + 20
        while True:
            if result is not None and result.ready():
                outcomes[f"result {result.state}"] += 1
                break
            if dead_letters(config) > before:
                outcomes["dead letter"] += 1
                break
            if time.monotonic() > deadline:
                outcomes["NO OUTCOME"] += 1
                break
            time.sleep(0.01)
        assert worker.process is not None and worker.process.poll() is None, "worker stopped"
        assert client.run("ping", timeout=30)["pong"] is True

    try:
        send()
    finally:
        worker.stop()
        client.close()
    reasons = Counter(
        re.sub(r"[\s(].*", "", entry["reason"].removeprefix("its ")) or "?"
        for entry in list_undeliverable(config, limit=100_000)
    )
    print(f"{sum(outcomes.values())} envelopes in {time.monotonic() - started:.0f} s; worker alive")
    for kind, count in outcomes.most_common():
        print(f"  {kind:<20} {count}")
    print("dead letters by the field named first in their reason:")
    for reason, count in reasons.most_common():
        print(f"  {reason:<20} {count}")


if __name__ == "__main__":
    main()
