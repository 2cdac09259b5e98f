"""`trainlog demo`: a realistic athlete sent through a real worker and broker, then a summary
and a PMC chart. Works with nothing configured (embedded broker, SQLite, local folders)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery.result import AsyncResult
from tqdm import tqdm

from storage.settings import Settings
from storage.stores import Stores
from workers.client import RESULT_POLL_SECONDS, TrainlogClient
from workers.demo_data import ATHLETE, generate
from workers.process import WorkerProcess
from workers.queues import queue_depth
from workers.report import draw_pmc

Echo = Callable[[str], None]


def _wait_all(
    results: list[AsyncResult], label: str, quiet: bool, timeout: float = 600
) -> list[Any]:
    values = []
    for result in tqdm(results, desc=label, unit="job", disable=quiet, leave=False):
        values.append(result.get(timeout=timeout, interval=RESULT_POLL_SECONDS))
    return values


def _drain(settings: Settings, timeout: float = 120) -> None:
    """Wait until follow-up jobs (queued recomputes) have been taken off the queues."""
    deadline = time.monotonic() + timeout
    while (queue_depth(settings) or 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)


def run_demo(
    settings: Settings,
    *,
    months: int = 6,
    chart: Path | None = None,
    quiet: bool = False,
    echo: Echo = print,
) -> dict[str, Any]:
    data = generate(months)
    stores = Stores(settings)
    stores.initialize()
    client = TrainlogClient(settings)
    worker = WorkerProcess(settings, name="demo")
    started = time.perf_counter()
    if not quiet:
        echo(
            f"starting a worker ({'embedded broker' if settings.broker_is_embedded else 'Redis'}"
            f"; log: {worker.log_path})"
        )
    with worker:
        for table, rows in (
            ("athlete", data.athlete),
            ("thresholds", data.thresholds),
            ("planned_sessions", data.planned),
        ):
            client.run("upsert_rows", table, rows)
        batches = [data.activities[i : i + 100] for i in range(0, len(data.activities), 100)]
        ingested = _wait_all(
            [client.send("ingest_activities", b) for b in batches], "activities", quiet
        )
        saved = _wait_all(
            [client.send("save_session", s) for s in data.sessions], "sessions", quiet
        )
        _drain(settings)
        rollup = client.run("nightly_rollup")
        _drain(settings)
    chart_path = chart or settings.home / f"pmc-{ATHLETE}.png"
    report = draw_pmc(stores, ATHLETE, chart_path)
    weekly = stores.repository("weekly_metrics").read_frame({"athleteId": ATHLETE})
    stores.close()
    client.close()
    return {
        "athleteId": ATHLETE,
        "seconds": round(time.perf_counter() - started, 1),
        "activities": sum(r["upserted"] for r in ingested),
        "sessions": len(saved),
        "plannedSessions": len(data.planned),
        "weeks": len(weekly),
        "rollupAthletes": rollup["athletes"],
        "ctl": report["ctl"],
        "atl": report["atl"],
        "tsb": report["tsb"],
        "lastDate": report["lastDate"],
        "chart": report["path"],
        "exportDir": str(settings.export_dir),
        "dataDir": str(settings.data_dir),
    }
