"""CSV upsert benchmark: ratios against raw pandas measured in the same run.
(a) and (b) use one file, as the original targets state them (the activities columns without
the monthly partitions); (a2)/(b2) show the same on the partitioned activities table; (b3)
appends a new key to a month of n rows (what a save does); (c) ingests through the real
activities repository.

python -m bench.csv_upsert [--ingest-rows 1000000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from bench.common import activities, ratio_line, timed
from storage.csv.storage import CsvStorage
from storage.repositories.csv import CsvRepository
from storage.tables import Table, get_table


def _single_upsert(repo: CsvRepository, *, new_keys: bool = False) -> Callable[[], object]:
    """One-row upserts: the same key updated again, or (`new_keys`) a new activity per call,
    whose key is in no month, so the row is appended (what a save does)."""
    counter = iter(range(1000))
    row = {"athleteId": "ath0001", "sport": "run", "durationSec": 1000.0}
    if new_keys:
        start = "2024-01-15T12:00:00Z"
        return lambda: repo.upsert({**row, "activityId": f"new{next(counter)}", "startTime": start})
    start = "2024-01-01T00:00:00Z"
    return lambda: repo.upsert(
        {**row, "activityId": "a1", "startTime": start, "durationSec": 1000 + next(counter)}
    )


def _files(root: Path, table: Table) -> list[Path]:
    storage = CsvStorage(root)
    return [storage.part_path(table, part) for part in storage.parts(table)]


def _batch_vs_raw(table: Table, root: Path, rows: int, size: int) -> tuple[float, float]:
    """(raw read_csv + to_csv of the table's files, one batch upsert of `size` rows) seconds."""
    repo = CsvRepository(table, CsvStorage(root))
    repo.upsert_frame(activities(rows))
    files = _files(root, table)

    def raw_cycle() -> None:
        for path in files:
            pd.read_csv(path).to_csv(root / "raw-copy.csv", index=False)

    changed = activities(size, seed=2)
    batches = iter(range(10))

    def batch_upsert() -> None:
        batch = changed.copy()
        batch["activityId"] = [f"a{i * 97 % rows}" for i in range(size)]
        batch["durationSec"] += next(batches)
        repo.upsert_frame(batch)

    return timed(raw_cycle), timed(batch_upsert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    table = get_table("activities")
    one_file = dataclasses.replace(table, partition=None)
    folder = Path(tempfile.mkdtemp(prefix="bench-csv-"))

    # (a) batch upsert of k rows into an n-row file vs one raw read_csv + to_csv of it
    for label, kind in (("(a) ", one_file), ("(a2)", table)):
        raw, batch = _batch_vs_raw(kind, folder / label.strip("() "), args.rows, args.batch)
        print(
            f"{label} {kind.name} in {len(_files(folder / label.strip('() '), kind))} file(s), "
            f"n={args.rows:,} k={args.batch:,}: raw read+write {raw:.3f}s, "
            f"batch upsert {batch:.3f}s"
        )
        target = "<= 2.0" if kind is one_file else "info: every month touched"
        print(ratio_line(f"     batch upsert / raw read+write {label}", batch / raw, target))

    # (b) single-row upsert growth
    for label, kind in (("(b) ", one_file), ("(b2)", table)):
        for size in (1_000, 10_000, 100_000):
            small = CsvRepository(kind, CsvStorage(folder / f"b{label.strip('() ')}{size}"))
            small.upsert_frame(activities(size))
            one = timed(_single_upsert(small))
            where = "one file" if kind is one_file else "one month of the partitioned table"
            print(f"{label} single-row upsert at n={size:>7,} ({where}): {one * 1000:8.1f} ms")
    for size in (1_000, 10_000, 100_000):  # (b3) a new key appended to a month of n rows
        month = activities(size)
        month["startTime"] = month["startTime"].str.replace(r"^\d{4}-\d{2}", "2024-01", regex=True)
        repo = CsvRepository(table, CsvStorage(folder / f"b3-{size}"))
        repo.upsert_frame(month)
        one = timed(
            _single_upsert(CsvRepository(table, CsvStorage(folder / f"b3-{size}")), new_keys=True)
        )
        print(f"(b3) new-key upsert into one month of n={size:>7,} rows: {one * 1000:8.1f} ms")

    # (c) ingest through the repository vs raw pandas concat + to_csv of the same rows
    rows = activities(args.ingest_rows, athletes=1000, seed=3)
    chunks = [rows.iloc[i : i + 100_000] for i in range(0, len(rows), 100_000)]

    def raw_ingest() -> None:
        pd.concat(chunks, ignore_index=True).to_csv(folder / "raw-ingest.csv", index=False)

    def repo_ingest() -> None:
        target = folder / f"c{os.urandom(4).hex()}"
        CsvRepository(table, CsvStorage(target)).upsert_frame(rows)

    raw_time = timed(raw_ingest, repeat=3)  # medians: one run of each is noisy here
    repo_time = timed(repo_ingest, repeat=3)
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
