"""What a job's own work costs in throughput, on Redis with the pipeline bench's worker:
the no-op, a no-op that carries a session payload (the message's size), jobs that burn a known
CPU time in the pool child, and save_session, each as a rate relative to the no-op.

    python -m bench.job_cost [--jobs 500] [--rounds 3] [--burn 2 4 8] [--redis URL]

It shows whether a save's ratio is set by its message or by its own CPU.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import CpuMeter, ratio_line
from bench.pipeline import WARM_UP_JOBS, Batch, cpu_per_job, payloads, run_batch, warm_up
from storage.settings import Settings
from storage.stores import Stores
from workers.client import TrainlogClient
from workers.process import WorkerProcess


class ProbeClient(TrainlogClient):
    """Sends the probe jobs, which are not public trainlog jobs, by their names."""

    def send(self, job: str, *args: Any, **kwargs: Any) -> Any:
        if job.startswith("probe."):
            return self.celery.send_task(job, args=list(args), queue="default")
        return super().send(job, *args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burn", type=float, nargs="*", default=[2.0, 4.0, 8.0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    home = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    settings = Settings.for_home(home, broker_url=args.redis)
    Stores(settings).initialize()
    kinds: dict[str, tuple[str, Any]] = {
        "no-op": ("ping", lambda p: []),
        "echo payload": ("probe.echo", lambda p: [p]),
        **{f"burn {ms:g} ms": ("probe.burn", lambda p, ms=ms: [ms]) for ms in args.burn},
        "save_session": ("save_session", lambda p: [p]),
    }
    runs: dict[str, list[Batch]] = {kind: [] for kind in kinds}
    client = ProbeClient(settings)
    worker = WorkerProcess(settings, name="bench-cost", app_module="bench.probe_app")
    with worker:
        assert worker.process is not None
        meter = CpuMeter(worker.process.pid, {"broker": "redis-server"})
        warm_up(client, meter, max(args.jobs, WARM_UP_JOBS))
        for _ in range(args.rounds):  # alternating, as in bench/pipeline.py
            for kind, (job, make) in kinds.items():
                jobs = [make(p) for p in payloads(args.jobs)]
                runs[kind].append(run_batch(client, meter, job, jobs))
    client.close()
    base = statistics.median(run[1] for run in runs["no-op"])
    print(f"[redis] {args.jobs} jobs x {args.rounds} alternating rounds, worker -c 2")
    for kind, batches in runs.items():
        cpu = cpu_per_job(batches)
        rate = statistics.median(run[1] for run in batches)
        print(
            ratio_line(
                f"  {kind:<13} {rate:6.1f}/s  CPU {sum(cpu.values()):5.2f} ms "
                f"(children {cpu['pool children']:5.2f})",
                rate / base,
                ">= 0.6" if kind == "save_session" else "none: a reference point",
            )
        )


if __name__ == "__main__":
    main()
