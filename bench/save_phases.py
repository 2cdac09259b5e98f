"""Where a save_session's time goes inside a real worker on Redis: wall and CPU milliseconds
per part of the save (SQL rows, JSON file, activity row, ...), per job as Celery runs it, and
the idle time a pool process waits for its next job; the no-op beside it for scale.

    python -m bench.save_phases [--jobs 1000] [--concurrency N] [--redis URL] [--postgres]
                                [--one-at-a-time]

Wall minus CPU is time spent waiting: on fsync, on a lock, on the database, for a core. It is
the same worker configuration as bench/pipeline.py, with each part wrapped by
bench/phase_app.py. `--one-at-a-time` sends each job after the last one's result came back
(a quiet worker: what one caller waits for) instead of in a burst.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import CpuMeter
from bench.phase_app import PARTS
from bench.pipeline import payloads, run_batch, settle, warm_up
from storage.settings import Settings
from storage.stores import Stores
from tests.services import postgres_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess

Totals = dict[str, list[float]]  # label -> [calls, wall s, CPU s]


def collect(folder: Path) -> Totals:
    """The pool processes' totals added together."""
    merged: Totals = {}
    for path in folder.glob("*.json"):
        for label, (calls, wall, cpu) in json.loads(path.read_text()).items():
            entry = merged.setdefault(label, [0, 0.0, 0.0])
            entry[0] += calls
            entry[1] += wall
            entry[2] += cpu
    return merged


def report(totals: Totals) -> None:
    print(f"  {'':<34}{'calls':>7}{'wall ms':>10}{'CPU ms':>9}{'waiting ms':>12}")
    jobs = ("ping", "save_session")
    order = [*(f"task trainlog.{job}" for job in jobs), *PARTS, "task trainlog.recompute_pending"]
    order += [f"idle before trainlog.{job}" for job in jobs]
    for label in order:
        if label not in totals:
            continue
        calls, wall, cpu = totals[label]
        wall_ms, cpu_ms = wall * 1000 / calls, cpu * 1000 / calls
        waiting = f"{wall_ms - cpu_ms:12.3f}" if cpu else ""
        indent = "    " if label in PARTS else ""
        print(f"  {indent + label:<34}{calls:7.0f}{wall_ms:10.3f}{cpu_ms:9.3f}{waiting}")


def one_at_a_time(
    client: TrainlogClient, _meter: CpuMeter, job: str, args_list: list[list[Any]]
) -> tuple[float, float, float]:
    """Each job sent when the previous one's result is back: (jobs/s, jobs/s, median ms)."""
    samples = []
    for args in args_list:
        started = time.perf_counter()
        client.run(job, *args, timeout=60)
        samples.append(time.perf_counter() - started)
    rate = len(samples) / sum(samples)
    return rate, rate, statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, help="default: the worker's default")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--postgres", action="store_true", help="SQL on a throwaway PostgreSQL")
    parser.add_argument("--one-at-a-time", action="store_true", help="no burst: one job at a time")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        options = {"broker_url": args.redis}
        if args.postgres:
            options["database_url"] = stack.enter_context(postgres_database())
        run(args, Settings.for_home(Path(tempfile.mkdtemp(prefix="bench-phases-")), **options))


def run(args: argparse.Namespace, settings: Settings) -> None:
    phases = settings.home / "phases"
    phases.mkdir(parents=True)
    redis.Redis.from_url(args.redis).flushdb()
    Stores(settings).initialize()
    client = TrainlogClient(settings)
    worker = WorkerProcess(
        settings,
        name="bench-phases",
        concurrency=args.concurrency,
        app_module="bench.phase_app",
        extra_env={"BENCH_PHASES_DIR": str(phases)},
    )
    with worker:
        assert worker.process is not None
        servers = {"postgres": "postgres"} if args.postgres else {}
        meter = CpuMeter(worker.process.pid, servers)
        warm_up(client, meter)
        baseline = collect(phases)
        batch = one_at_a_time if args.one_at_a_time else run_batch
        noop = batch(client, meter, "ping", [[] for _ in range(args.jobs)])
        settle(client)
        save = batch(client, meter, "save_session", [[p] for p in payloads(args.jobs)])
        settle(client)
    client.close()
    totals = {}
    for label, entry in collect(phases).items():
        before = baseline.get(label, [0, 0.0, 0.0])
        totals[label] = [now - then for now, then in zip(entry, before, strict=True)]
    processes = args.concurrency or settings.worker_concurrency
    label = "redis + postgresql" if args.postgres else "redis"
    mode = "one at a time" if args.one_at_a_time else "in a burst"
    print(
        f"[{label}] {args.jobs} no-ops then {args.jobs} saves {mode}, worker -c {processes}: "
        f"{noop[1]:.0f}/s and {save[1]:.0f}/s end to end (per pool process, ms per call)"
    )
    if args.one_at_a_time:
        print(f"  median latency: no-op {noop[2]:.1f} ms, save_session {save[2]:.1f} ms")
    report({label: entry for label, entry in totals.items() if entry[0] > 0})


if __name__ == "__main__":
    main()
