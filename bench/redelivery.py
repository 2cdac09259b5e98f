"""Jobs lost when a whole Redis worker is SIGKILLed mid-run: kombu's stock transport (BRPOP,
then record as unacked) against trainlog's atomic pop (workers/brokers/redis.py).

    python -m bench.redelivery [--rounds 20] [--jobs 300] [--redis-url redis://127.0.0.1:6379/14]

Each round queues `--jobs` trainlog.ping jobs, SIGKILLs the worker (main process and pool)
once a random number of them has finished, and counts the jobs that are neither finished,
queued nor in the unacked hash: those would never run. Uses and flushes the given Redis db.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import redis

from storage.settings import Settings
from tests.pipeline.ledger import unaccounted_jobs
from workers.client import TrainlogClient
from workers.process import WorkerProcess

APPS = {"kombu stock": "bench.stock_kombu_app", "trainlog atomic pop": "workers.app"}


def finished(client: redis.Redis, task_ids: list[str]) -> int:
    return int(client.exists(*(f"celery-task-meta-{task_id}" for task_id in task_ids)))


def kill_round(url: str, app_module: str, jobs: int, rng: random.Random) -> tuple[int, bool]:
    """(jobs lost, whether the kill landed mid-run) for one SIGKILLed worker."""
    store = redis.Redis.from_url(url)
    store.flushdb()
    home = Path(tempfile.mkdtemp(prefix="trainlog-redelivery-"))
    settings = Settings.for_home(home).with_(
        broker_url=url, task_time_limit=2, task_soft_time_limit=1, visibility_timeout=4
    )
    worker = WorkerProcess(settings, name="victim", app_module=app_module).start()
    producer = TrainlogClient(settings)
    task_ids = [producer.send("ping").id for _ in range(jobs)]
    target = rng.randint(10, jobs - 10)
    deadline = time.monotonic() + 60
    while finished(store, task_ids) < target and time.monotonic() < deadline:
        time.sleep(0.002)
    worker.kill()
    mid_run = finished(store, task_ids) < jobs
    lost = len(unaccounted_jobs(store, task_ids))
    producer.close()
    store.flushdb()
    return lost, mid_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    rng = random.Random(7)
    results = {}
    for label, module in APPS.items():
        rounds = [kill_round(args.redis_url, module, args.jobs, rng) for _ in range(args.rounds)]
        kills = sum(1 for _, mid in rounds if mid)
        lost = sum(lost for lost, _ in rounds)
        losing = sum(1 for lost, _ in rounds if lost)
        results[label] = lost
        print(
            f"{label:<22} kills mid-run {kills:3d}   kills that lost a job {losing:3d}   "
            f"jobs lost {lost:3d}"
        )
    baseline = results["kombu stock"]
    print(f"jobs lost, trainlog / stock: {results['trainlog atomic pop']} / {baseline}")


if __name__ == "__main__":
    main()
