"""Pipeline benchmark (SPEC 10): save_session end-to-end vs a no-op job on the same worker
configuration, enqueue rate and median latency, on Redis and on the embedded broker.

    python -m bench.pipeline [--jobs 500] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import ratio_line
from storage.settings import Settings
from storage.stores import Stores
from tests.factories import session_payload
from workers.client import TrainlogClient
from workers.process import WorkerProcess


def payloads(count: int) -> list[dict[str, Any]]:
    return [
        session_payload(n, _id=str(uuid.uuid4()), userId=f"bench-{n % 20}") for n in range(count)
    ]


def run_batch(client: TrainlogClient, job: str, args_list: list[list[Any]]) -> tuple[float, float]:
    """(enqueue rate, end-to-end rate) in jobs per second."""
    started = time.perf_counter()
    results = [client.send(job, *args) for args in args_list]
    enqueued = time.perf_counter()
    for result in results:
        result.get(timeout=600)
    finished = time.perf_counter()
    return len(results) / (enqueued - started), len(results) / (finished - started)


def latency_ms(client: TrainlogClient, job: str, args_list: list[list[Any]]) -> float:
    samples = []
    for args in args_list:
        started = time.perf_counter()
        client.run(job, *args, timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(label: str, settings: Settings, jobs: int) -> None:
    Stores(settings).initialize()
    client = TrainlogClient(settings)
    with WorkerProcess(settings, name=f"bench-{label}", concurrency=2):
        client.run("ping", timeout=60)  # warm up
        noop_enqueue, noop_rate = run_batch(client, "ping", [[] for _ in range(jobs)])
        save_enqueue, save_rate = run_batch(client, "save_session", [[p] for p in payloads(jobs)])
        noop_latency = latency_ms(client, "ping", [[] for _ in range(30)])
        save_latency = latency_ms(client, "save_session", [[p] for p in payloads(30)])
    client.close()
    print(f"[{label}] {jobs} jobs, worker -c 2, acks_late, prefetch 1, events on")
    print(
        f"  no-op:        enqueue {noop_enqueue:8.0f}/s  end-to-end {noop_rate:7.1f}/s  "
        f"median latency {noop_latency:6.1f} ms"
    )
    print(
        f"  save_session: enqueue {save_enqueue:8.0f}/s  end-to-end {save_rate:7.1f}/s  "
        f"median latency {save_latency:6.1f} ms"
    )
    print(
        ratio_line(f"  [{label}] save_session / no-op end-to-end", save_rate / noop_rate, ">= 0.6")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    measure("redis", Settings.for_home(root / "redis", broker_url=args.redis), args.jobs)
    if not args.skip_embedded:
        measure("embedded", Settings.for_home(root / "embedded"), max(args.jobs // 5, 50))


if __name__ == "__main__":
    main()
