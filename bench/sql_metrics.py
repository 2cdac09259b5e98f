"""Every table in SQL (the several-hosts profile) against CSV, in one run on the same data:
ingest, full recompute, and one new activity followed by the daily and weekly recompute of
its athlete. Prints the seconds of each, the SQL/CSV ratios and each backend's peak RSS (each
backend runs in a process of its own, so the peaks are separate).

    python -m bench.sql_metrics [--athletes 200] [--activities 200000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import activities, peak_rss_mb
from storage.settings import Settings
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def ingest(stores: Stores, records: list[dict]) -> None:
    """In jobs of at most 50,000 rows, as a producer sends them (a job takes 100,000)."""
    for start in range(0, len(records), 50_000):
        rows.ingest_activities(stores, records[start : start + 50_000])


def measure(settings: Settings, athletes: int, count: int) -> dict[str, float]:
    stores = Stores(settings)
    stores.initialize()
    frame = activities(count, athletes)
    ids = sorted(set(frame["athleteId"]))
    rows.upsert_rows(stores, "athlete", [{"athleteId": a, "timezone": "UTC"} for a in ids])
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    one = ids[0]
    new = {**records[0], "activityId": "bench-new", "athleteId": one}
    new["startTime"] = "2025-12-30T07:00:00Z"
    try:
        return {
            "ingest": timed(lambda: ingest(stores, records)),
            "full recompute": timed(lambda: recompute.recompute_many(stores, dict.fromkeys(ids))),
            "one new activity": timed(
                lambda: recompute.recompute_many(
                    stores,
                    {
                        one: recompute.parse_since(
                            rows.ingest_activities(stores, [new])["recomputeFrom"][one]
                        )
                    },
                )
            ),
            "peak RSS MB": peak_rss_mb(),
        }
    finally:
        stores.close()


def measure_in(home: Path, sql_url: str | None, athletes: int, count: int) -> dict[str, float]:
    settings = Settings.for_home(home)
    if sql_url is not None:
        settings = Settings.for_home(home, table_backends={"*": "sql"}).with_(database_url=sql_url)
    return measure(settings, athletes, count)


def measured(home: Path, sql_url: str | None, athletes: int, count: int) -> dict[str, float]:
    """`measure` in a fresh process (settings rebuilt there): its peak RSS is that backend's
    alone. `sql_url`: every table on that database; None: the default CSV tables."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure_in, (home, sql_url, athletes, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--athletes", type=int, default=200)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--database-url", help="an empty database for the SQL run (else SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'sql' / 'trainlog.sqlite'}"
        csv = measured(Path(scratch) / "csv", None, args.athletes, args.activities)
        sql = measured(Path(scratch) / "sql", url, args.athletes, args.activities)
    print(f"{args.activities:,} activities, {args.athletes} athletes, SQL on {url.split(':')[0]}")
    for step, seconds in csv.items():
        ratio = sql[step] / seconds
        unit = "MB" if "MB" in step else "s "
        both = f"CSV {seconds:7.2f} {unit}  SQL {sql[step]:7.2f} {unit}"
        print(f"{step:<18} {both}  SQL/CSV {ratio:6.2f}")


if __name__ == "__main__":
    main()
