"""Helpers shared by the benchmarks: timing, medians, data generation, CPU use, peak RSS."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

SPORTS = np.array(["run", "ride", "swim", "walk", "row"])


def timed(action: Callable[[], object], repeat: int = 3) -> float:
    """Median wall time of `repeat` runs, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def activities(count: int, athletes: int = 100, seed: int = 1, prefix: str = "a") -> pd.DataFrame:
    """A realistic activities frame: mixed sports, power on rides, HR on most, RPE on some."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-01-01T05:00:00Z")
    offsets = rng.integers(0, 3 * 365 * 86400, count)
    sport = SPORTS[rng.integers(0, len(SPORTS), count)]
    duration = rng.uniform(1200, 7200, count).round(1)
    power = np.where(sport == "ride", rng.uniform(120, 300, count).round(1), np.nan)
    return pd.DataFrame(
        {
            "activityId": [f"{prefix}{i}" for i in range(count)],
            "athleteId": [f"ath{i % athletes:04d}" for i in range(count)],
            "startTime": (start + pd.to_timedelta(offsets, unit="s")).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "sport": sport,
            "durationSec": duration,
            "distanceM": (duration * rng.uniform(2, 8, count)).round(1),
            "avgHr": np.where(
                rng.random(count) < 0.8, rng.uniform(110, 170, count).round(), np.nan
            ),
            "normalizedPowerW": power,
            "avgPowerW": power * 0.93,
            "rpe": np.where(rng.random(count) < 0.3, rng.integers(2, 10, count), np.nan),
        }
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts again at exec, where
    getrusage's maxrss keeps the peak of the process a spawned one was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ratio_line(name: str, value: float, target: str) -> str:
    return f"{name:<60} {value:8.3f}   (target {target})"


class CpuMeter:
    """CPU seconds (user + system) used by a worker process tree, server processes by name
    (Redis, PostgreSQL's backends) and this process, so a bench can show where each job's CPU
    goes on a shared machine."""

    def __init__(self, worker_pid: int, servers: dict[str, str] | None = None) -> None:
        self.worker = psutil.Process(worker_pid)
        self.servers = servers or {}  # label -> process name

    def read(self) -> dict[str, float]:
        def used(process: psutil.Process) -> float:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                return 0.0
            return times.user + times.system

        named: dict[str, list[psutil.Process]] = {label: [] for label in self.servers}
        for process in psutil.process_iter(["name"]):
            for label, name in self.servers.items():
                if process.info["name"] == name:
                    named[label].append(process)
        return {
            "worker main": used(self.worker),
            "pool children": sum(used(child) for child in self.worker.children(recursive=True)),
            **{label: sum(used(process) for process in found) for label, found in named.items()},
            "producer": used(psutil.Process()),
        }


def machine_cpu() -> tuple[float, float]:
    """(busy, elapsed) CPU seconds summed over every core since boot: the difference of two
    readings says how busy the whole machine was, other tenants included."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total
