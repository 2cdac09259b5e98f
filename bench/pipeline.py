"""Pipeline benchmark: save_session end-to-end vs a no-op job on the same worker
configuration, enqueue rate and median latency, on Redis and on the embedded broker.

    python -m bench.pipeline [--jobs 500] [--rounds 3] [--redis redis://127.0.0.1:6379/13]
                             [--postgres]   # SQL on a throwaway PostgreSQL database, as deployed

The two jobs run in alternating batches (no-op, save, no-op, save, ...) and the medians are
compared, so a burst of load from another tenant of the machine hits both sides alike; after
each batch the bench waits for the worker to go idle, so the metrics recompute a save batch
schedules (it runs `recompute_delay` seconds later) is not charged to the next no-op batch.
The CPU each job costs the worker's main process, its pool children, the broker server and
this producer is printed too, with how busy the machine's cores were: on a machine whose cores
are all busy, the ratio of those totals is what bounds the throughput ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import CpuMeter, machine_cpu, ratio_line
from storage.settings import Settings
from storage.stores import Stores
from tests.factories import session_payload
from tests.services import postgres_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess


def payloads(count: int) -> list[dict[str, Any]]:
    return [
        session_payload(n, _id=str(uuid.uuid4()), userId=f"bench-{n % 20}") for n in range(count)
    ]


# enqueue rate, end-to-end rate, CPU ms per job by process group, share of the machine busy
Batch = tuple[float, float, dict[str, float], float]


def run_batch(
    client: TrainlogClient, meter: CpuMeter, job: str, args_list: list[list[Any]]
) -> Batch:
    """Rates in jobs per second, the CPU milliseconds each job cost each process group, and
    how busy the machine's cores were meanwhile (near 1: the jobs' CPU bounds the rate)."""
    cpu_before, machine_before = meter.read(), machine_cpu()
    started = time.perf_counter()
    results = [client.send(job, *args) for args in args_list]
    enqueued = time.perf_counter()
    for result in results:
        result.get(timeout=600)
    finished = time.perf_counter()
    cpu = {
        name: (used - cpu_before[name]) * 1000 / len(results) for name, used in meter.read().items()
    }
    busy, elapsed = machine_cpu()
    busy_share = (busy - machine_before[0]) / (elapsed - machine_before[1])
    return (
        len(results) / (enqueued - started),
        len(results) / (finished - started),
        cpu,
        busy_share,
    )


def settle(client: TrainlogClient, timeout: float = 120) -> None:
    """Wait until the worker holds no job, twice in a row: the recompute a save batch
    schedules runs `recompute_delay` seconds after it and would be charged to the next batch."""
    inspect = client.celery.control.inspect(timeout=1.0)
    deadline = time.monotonic() + timeout
    idle_checks = 0
    while idle_checks < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker still had jobs after {timeout:g}s")
        replies = (inspect.active(), inspect.reserved(), inspect.scheduled())
        idle = all(reply and not any(reply.values()) for reply in replies)
        idle_checks = idle_checks + 1 if idle else 0
        time.sleep(0.5)


WARM_UP_JOBS = 500  # the untimed batch of each job a Redis bench runs before timing


def warm_up(client: TrainlogClient, meter: CpuMeter, jobs: int = WARM_UP_JOBS) -> None:
    """An untimed full batch of no-ops, then of saves, then idle. After a 100-job warm-up the
    first timed no-op batch ran slow (245-293/s) in nine runs of nine, which favoured the
    save; after a 500-job one it ran at 363-433/s in three runs of five (2026-12-01). The
    no-op's slow speed still comes and goes later on (docs/benchmarks.md)."""
    run_batch(client, meter, "ping", [[] for _ in range(jobs)])
    run_batch(client, meter, "save_session", [[p] for p in payloads(jobs)])
    settle(client)


def latency_ms(client: TrainlogClient, job: str, args_list: list[list[Any]]) -> float:
    samples = []
    for args in args_list:
        started = time.perf_counter()
        client.run(job, *args, timeout=60)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(
    label: str,
    settings: Settings,
    jobs: int,
    rounds: int,
    app_module: str = "workers.app",
    concurrency: int | None = None,
) -> None:
    Stores(settings).initialize()
    client = TrainlogClient(settings)
    noop: list[Batch] = []
    save: list[Batch] = []
    worker = WorkerProcess(
        settings, name=f"bench-{label}", concurrency=concurrency, app_module=app_module
    )
    with worker:
        assert worker.process is not None
        servers = {"broker": "redis-server"} if settings.broker_url else {}
        if settings.database_url.startswith("postgresql"):
            servers["postgres"] = "postgres"
        meter = CpuMeter(worker.process.pid, servers)
        # the embedded broker's ~18 jobs/s is its poll, cold or warm: a timed batch's worth
        warm_up(client, meter, max(jobs, WARM_UP_JOBS) if settings.broker_url else jobs)
        for _ in range(rounds):
            noop.append(run_batch(client, meter, "ping", [[] for _ in range(jobs)]))
            settle(client)
            save.append(run_batch(client, meter, "save_session", [[p] for p in payloads(jobs)]))
            settle(client)
        noop_latency = latency_ms(client, "ping", [[] for _ in range(30)])
        save_latency = latency_ms(client, "save_session", [[p] for p in payloads(30)])
    client.close()
    noop_rate, save_rate = (statistics.median(run[1] for run in runs) for runs in (noop, save))
    noop_cpu, save_cpu = (cpu_per_job(runs) for runs in (noop, save))
    processes = concurrency or settings.worker_concurrency
    print(
        f"[{label}] {jobs} jobs x {rounds} alternating rounds, worker -c {processes}, acks_late, "
        "prefetch 1, events on"
    )
    for name, runs, latency in (
        ("no-op", noop, noop_latency),
        ("save_session", save, save_latency),
    ):
        rates = " ".join(f"{run[1]:.1f}" for run in runs)
        busy = statistics.median(run[3] for run in runs)
        print(
            f"  {name + ':':<14}enqueue {statistics.median(run[0] for run in runs):6.0f}/s  "
            f"end-to-end {rates} /s  median latency {latency:6.1f} ms  cores busy {busy:.0%}"
        )
    for name, cpu in (("no-op", noop_cpu), ("save_session", save_cpu)):
        parts = "  ".join(f"{group} {ms:.2f}" for group, ms in cpu.items())
        print(f"  {name + ':':<14}CPU ms per job: {parts}  total {sum(cpu.values()):.2f}")
    print(
        ratio_line(
            f"  [{label}] save_session / no-op end-to-end (medians)",
            save_rate / noop_rate,
            ">= 0.6",
        )
    )
    print(
        f"  [{label}] CPU per no-op job / CPU per save job: "
        f"{sum(noop_cpu.values()) / sum(save_cpu.values()):.3f} (the bound when every core is busy)"
    )


def cpu_per_job(runs: list[Batch]) -> dict[str, float]:
    return {name: statistics.median(run[2][name] for run in runs) for name in runs[0][2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--stock-kombu",
        action="store_true",
        help="run the Redis part on kombu's own transport (bench/stock_kombu_app.py)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--concurrency", type=int, help="pool processes (-c); default: the worker's default"
    )
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="put the Redis part's SQL on a throwaway PostgreSQL database (as in production)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    label = "redis (kombu stock)" if args.stock_kombu else "redis"
    app_module = "bench.stock_kombu_app" if args.stock_kombu else "workers.app"
    with contextlib.ExitStack() as stack:
        options = {"broker_url": args.redis}
        if args.postgres:
            options["database_url"] = stack.enter_context(postgres_database())
            label += " + postgresql"
        settings = Settings.for_home(root / "redis", **options)
        measure(label, settings, args.jobs, args.rounds, app_module, args.concurrency)
    if not args.skip_embedded:
        measure(
            "embedded", Settings.for_home(root / "embedded"), max(args.jobs // 5, 50), args.rounds
        )


if __name__ == "__main__":
    main()
