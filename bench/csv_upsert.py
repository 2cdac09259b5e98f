"""CSV upsert benchmark (SPEC 10): ratios against raw pandas measured in the same run.

python -m bench.csv_upsert [--ingest-rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.common import activities, ratio_line, timed
from storage.csv.storage import CsvStorage
from storage.repositories.csv import CsvRepository
from storage.tables import get_table


def _single_upsert(repo: CsvRepository) -> Callable[[], object]:
    counter = iter(range(1000))
    row = {
        "activityId": "a1",
        "athleteId": "ath0001",
        "startTime": "2024-01-01T00:00:00Z",
        "sport": "run",
    }
    return lambda: repo.upsert({**row, "durationSec": 1000 + next(counter)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    table = get_table("activities")
    folder = Path(tempfile.mkdtemp(prefix="bench-csv-"))

    # (a) batch upsert of k rows into an n-row file vs one raw read_csv + to_csv of it
    repo = CsvRepository(table, CsvStorage(folder / "a"))
    repo.upsert_frame(activities(args.rows))
    path = repo.csv.path(table)

    def raw_cycle() -> None:
        frame = pd.read_csv(path)
        frame.to_csv(folder / "raw-copy.csv", index=False)

    changed = activities(args.batch, seed=2)
    batches = iter(range(10))

    def batch_upsert() -> None:
        batch = changed.copy()
        batch["activityId"] = [f"a{i * 97 % args.rows}" for i in range(args.batch)]
        batch["durationSec"] += next(batches)
        repo.upsert_frame(batch)

    raw = timed(raw_cycle)
    batch = timed(batch_upsert)
    print(
        f"(a) n={args.rows:,} k={args.batch:,}: raw read+write {raw:.3f}s, "
        f"batch upsert {batch:.3f}s"
    )
    print(ratio_line("    batch upsert / raw read+write", batch / raw, "<= 2.0"))

    # (b) single-row upsert growth
    for size in (1_000, 10_000, 100_000):
        small = CsvRepository(table, CsvStorage(folder / f"b{size}"))
        small.upsert_frame(activities(size))
        one = timed(_single_upsert(small))
        print(f"(b) single-row upsert at n={size:>7,}: {one * 1000:8.1f} ms")

    # (c) ingest through the repository vs raw pandas concat + to_csv of the same rows
    rows = activities(args.ingest_rows, athletes=1000, seed=3)
    chunks = [rows.iloc[i : i + 100_000] for i in range(0, len(rows), 100_000)]

    def raw_ingest() -> None:
        pd.concat(chunks, ignore_index=True).to_csv(folder / "raw-ingest.csv", index=False)

    def repo_ingest() -> None:
        target = folder / f"c{os.urandom(4).hex()}"
        CsvRepository(table, CsvStorage(target)).upsert_frame(rows)

    raw_time = timed(raw_ingest, repeat=1)
    repo_time = timed(repo_ingest, repeat=1)
    print(
        f"(c) ingest {len(rows):,} rows: raw {raw_time:.2f}s ({len(rows) / raw_time:,.0f}/s), "
        f"repository {repo_time:.2f}s ({len(rows) / repo_time:,.0f}/s)"
    )
    print(
        ratio_line(
            "    repository throughput / raw pandas throughput", raw_time / repo_time, ">= 0.5"
        )
    )


if __name__ == "__main__":
    main()
