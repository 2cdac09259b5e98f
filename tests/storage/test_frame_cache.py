"""Parsed CSV files cached by content: a reader gets what the file holds now, whoever wrote it
and however fast, and cannot change what the next reader gets."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from storage.csv.storage import CsvStorage
from storage.tables import get_table

THRESHOLDS = get_table("thresholds")


def row(n: int, ftp: float) -> dict[str, object]:
    return {
        "thresholdId": f"t{n}",
        "athleteId": "a1",
        "sport": "ride",
        "validFrom": "2026-01-01",
        "ftpW": ftp,
    }


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_unchanged_file_is_parsed_once_and_a_changed_one_again(tmp_path: Path) -> None:
    csv = CsvStorage(tmp_path)
    csv.write(THRESHOLDS, frame(row(1, 250.0)))
    first = csv.read(THRESHOLDS)
    again = csv.read(THRESHOLDS)
    assert csv.frame_cache.hits == 1
    pd.testing.assert_frame_equal(first, again)
    csv.write(THRESHOLDS, frame(row(1, 260.0)))
    assert csv.read(THRESHOLDS)["ftpW"].tolist() == [260.0]


def test_a_rewrite_by_another_process_with_the_same_size_inode_and_mtime_is_seen(
    tmp_path: Path,
) -> None:
    """The case a signature cache (inode, size, mtime) gets wrong: same length, and the
    stamps set back to what they were."""
    reader, writer = CsvStorage(tmp_path), CsvStorage(tmp_path)
    writer.write(THRESHOLDS, frame(row(1, 250.0)))
    assert reader.read(THRESHOLDS)["ftpW"].tolist() == [250.0]
    path = writer.part_path(THRESHOLDS, "")
    before = os.stat(path)
    text = path.read_text()
    assert "250.0" in text
    with open(path, "r+") as handle:  # in place: the same inode
        handle.write(text.replace("250.0", "255.0"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(path).st_ino, os.stat(path).st_size) == (before.st_ino, before.st_size)
    assert reader.read(THRESHOLDS)["ftpW"].tolist() == [255.0]


def test_a_reader_changing_its_frame_leaves_the_cached_one_alone(tmp_path: Path) -> None:
    csv = CsvStorage(tmp_path)
    csv.write(THRESHOLDS, frame(row(1, 250.0), row(2, 300.0)))
    mine = csv.read(THRESHOLDS)
    mine.loc[0, "ftpW"] = 1.0
    mine["athleteId"] = "someone else"
    fresh = csv.read(THRESHOLDS)
    assert fresh["ftpW"].tolist() == [250.0, 300.0]
    assert fresh["athleteId"].tolist() == ["a1", "a1"]
