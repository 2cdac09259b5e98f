"""Every table in SQL (the several-hosts profile) against CSV, in one run on the same data:
ingest, full recompute, and one new activity followed by the daily and weekly recompute of
its athlete. Prints the seconds of each and the SQL/CSV ratios.

    python -m bench.sql_metrics [--athletes 200] [--activities 200000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import activities
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
        }
    finally:
        stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--athletes", type=int, default=200)
    parser.add_argument("--activities", type=int, default=200_000)
    parser.add_argument("--database-url", help="an empty database for the SQL run (else SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        csv = measure(Settings.for_home(Path(scratch) / "csv"), args.athletes, args.activities)
        sql_settings = Settings.for_home(Path(scratch) / "sql", table_backends={"*": "sql"})
        if args.database_url:
            sql_settings = sql_settings.with_(database_url=args.database_url)
        sql = measure(sql_settings, args.athletes, args.activities)
    dialect = sql_settings.database_url.split(":")[0]
    print(f"{args.activities:,} activities, {args.athletes} athletes, SQL on {dialect}")
    for step, seconds in csv.items():
        ratio = sql[step] / seconds
        print(f"{step:<18} CSV {seconds:7.2f} s   SQL {sql[step]:7.2f} s   SQL/CSV {ratio:6.2f}")


if __name__ == "__main__":
    main()
