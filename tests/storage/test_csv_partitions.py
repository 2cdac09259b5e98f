"""Monthly partitions of the large CSV tables: rows land in their month's file, a write rewrites
only the months it changes, keys that change month move, and older layouts are split."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from storage.csv.keylists import sidecar_path
from storage.csv.partitions import UNDATED, part_ids, split_parts
from storage.csv.storage import CsvStorage
from storage.repositories.csv import CsvRepository
from storage.tables import get_table

ACTIVITIES = get_table("activities")


def _activity(activity_id: str, start: str, duration: float = 600.0) -> dict:
    return {
        "activityId": activity_id,
        "athleteId": "ath1",
        "startTime": start,
        "sport": "run",
        "durationSec": duration,
    }


def _repo(tmp_path: Path) -> CsvRepository:
    return CsvRepository(ACTIVITIES, CsvStorage(tmp_path))


def _signature(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns


def test_rows_land_in_their_month_and_untouched_months_are_not_rewritten(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert_frame(
        pd.DataFrame(
            [
                _activity("a", "2026-01-05T10:00:00Z"),
                _activity("b", "2026-02-05T10:00:00Z"),
                _activity("c", "2026-03-05T10:00:00Z"),
            ]
        )
    )
    assert repo.csv.parts(ACTIVITIES) == ["2026-01", "2026-02", "2026-03"]
    january = repo.csv.part_path(ACTIVITIES, "2026-01")
    before = _signature(january)
    repo.upsert(_activity("d", "2026-03-20T10:00:00Z"))
    repo.upsert_frame(pd.DataFrame([_activity("b", "2026-02-05T10:00:00Z", 900.0)]))
    assert _signature(january) == before
    assert sorted(repo.read_frame()["activityId"]) == ["a", "b", "c", "d"]
    assert repo.get("b")["durationSec"] == 900.0 and repo.get("b")["version"] == 2


def test_a_key_whose_month_changes_moves_without_a_duplicate(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", "2026-01-05T10:00:00Z"))
    repo.upsert(_activity("a", "2026-04-05T10:00:00Z"))  # contract path
    assert repo.csv.parts(ACTIVITIES) == ["2026-04"]
    repo.upsert_frame(pd.DataFrame([_activity("a", "2026-02-01T00:00:00Z")]))  # bulk path
    frame = repo.read_frame()
    assert list(frame["activityId"]) == ["a"] and repo.csv.parts(ACTIVITIES) == ["2026-02"]
    assert int(frame["version"].iloc[0]) == 3
    # another process (a fresh storage, empty key cache) finds the key in its month
    other = _repo(tmp_path)
    other.upsert(_activity("a", "2026-05-01T00:00:00Z"))
    assert repo.csv.parts(ACTIVITIES) == ["2026-05"] and len(other.read_frame()) == 1


def test_a_row_left_in_two_months_by_a_killed_mover_reads_once_at_its_newest(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", "2026-01-05T10:00:00Z", 100.0))
    january = repo.csv.part_path(ACTIVITIES, "2026-01").read_text()
    repo.upsert(_activity("a", "2026-03-05T10:00:00Z", 300.0))
    # what a writer killed between writing March and rewriting January leaves behind
    repo.csv.part_path(ACTIVITIES, "2026-01").write_text(january)
    frame = repo.read_frame()
    assert list(frame["durationSec"]) == [300.0] and int(frame["version"].iloc[0]) == 2
    assert repo.get("a")["durationSec"] == 300.0


def test_since_and_changed_after_read_only_the_months_that_can_match(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert_frame(
        pd.DataFrame(
            [_activity(f"m{m}", f"2026-{m:02d}-10T00:00:00Z") for m in range(1, 7)]
            + [_activity("late", "2026-05-31T23:00:00Z")]
        )
    )
    old = repo.csv.part_path(ACTIVITIES, "2026-01")
    old.write_text("this month must not be read\n")  # any read of it would fail to parse
    os.utime(old, (0, 0))
    assert list(repo.read_frame(since="2026-05-31")["activityId"]) == ["late", "m6"]
    stamp = repo.read_frame(since="2026-06-01")["updatedAt"].iloc[0]
    repo.upsert(_activity("m6", "2026-06-10T00:00:00Z", 1234.0))
    changed = repo.read_frame(changed_after=stamp)
    assert list(changed["activityId"]) == ["m6"]


def test_scoped_replace_rewrites_only_months_from_the_scope_on(tmp_path: Path) -> None:
    table = get_table("daily_metrics")
    repo = CsvRepository(table, CsvStorage(tmp_path))
    days = pd.date_range("2026-01-30", "2026-03-02").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"athleteId": "ath1", "date": days, "load": 1.0})
    repo.replace_scope(frame, {"ath1": "0000-00-00"}, "date")
    january = repo.csv.part_path(table, "2026-01")
    before = _signature(january)
    tail = frame[frame["date"] >= "2026-02-27"].assign(load=5.0)
    changed = repo.replace_scope(tail.iloc[:-1], {"ath1": "2026-02-27"}, "date")
    assert changed == 4  # three loads changed, 2026-03-02 removed
    assert _signature(january) == before
    stored = repo.read_frame()
    assert stored["date"].max() == "2026-03-01" and len(stored) == len(days) - 1
    assert list(stored[stored["date"] >= "2026-02-27"]["load"]) == [5.0, 5.0, 5.0]


def test_the_single_file_layout_is_split_into_months_keeping_every_value(tmp_path: Path) -> None:
    legacy = tmp_path / "activities.csv"
    legacy.write_text(
        "activityId,athleteId,startTime,sport,durationSec,legacyNote\n"
        "a,ath1,2026-01-05T10:00:00Z,run,600.0,NA\n"
        "b,ath1,2026-02-05T10:00:00Z,ride,1200.5,007\n"
    )
    repo = _repo(tmp_path)
    repo.initialize()
    assert not legacy.exists() and repo.csv.parts(ACTIVITIES) == ["2026-01", "2026-02"]
    frame = repo.read_frame().set_index("activityId")
    assert frame.loc["b", "durationSec"] == 1200.5 and frame.loc["b", "legacyNote"] == "007"
    assert frame.loc["a", "legacyNote"] == "NA"


@pytest.mark.parametrize("odd_id", ["plain", "\\leading-backslash", "with,comma", 'with"quote'])
def test_a_fresh_process_finds_any_key_in_its_month(tmp_path: Path, odd_id: str) -> None:
    """Keys are found by reading only the key column of each month, escapes and quotes too."""
    repo = _repo(tmp_path)
    repo.upsert_frame(
        pd.DataFrame([_activity(odd_id, "2026-01-05T10:00:00Z"), _activity("x", "2026-02-01")])
    )
    fresh = _repo(tmp_path)  # an empty key cache, as in another worker
    fresh.upsert(_activity(odd_id, "2026-03-05T10:00:00Z"))
    frame = _repo(tmp_path).read_frame()
    assert sorted(frame["activityId"]) == sorted([odd_id, "x"])
    assert repo.csv.parts(ACTIVITIES) == ["2026-02", "2026-03"]


def test_key_lists_beside_the_months_are_used_only_while_they_match(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert_frame(pd.DataFrame([_activity("a", "2026-01-05T10:00:00Z")]))
    january = repo.csv.part_path(ACTIVITIES, "2026-01")
    sidecar = sidecar_path(january)
    assert sidecar.read_text().splitlines()[1:] == ["a"]
    # the month edited by hand (another tool): the list no longer matches and is not trusted
    with january.open("a") as handle:
        handle.write("b,ath1,2026-01-09T10:00:00Z,run,60.0" + "," * 10 + "\n")
    fresh = _repo(tmp_path)
    fresh.upsert(_activity("b", "2026-02-01T00:00:00Z"))  # moves b out of January
    assert sorted(_repo(tmp_path).read_frame()["activityId"]) == ["a", "b"]
    sidecar.write_text("garbage")  # a broken list is rebuilt from the file
    assert _repo(tmp_path).csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["a"]})) == {
        "2026-01"
    }


def test_every_row_lands_in_exactly_one_part_whatever_its_date_text() -> None:
    values = ["2026-01-05T00:00:00Z", None, "2025-12-31", "bad", "2026-13-01", "é2026-01", ""]
    frame = pd.DataFrame({"startTime": values})
    pieces = split_parts(ACTIVITIES, frame)
    assert sorted(i for piece in pieces.values() for i in piece.index) == list(range(len(values)))
    assert list(part_ids(ACTIVITIES, frame)) == [
        "2026-01",
        UNDATED,
        "2025-12",
        UNDATED,
        UNDATED,
        UNDATED,
        UNDATED,
    ]


def test_new_keys_are_appended_and_a_killed_appenders_partial_line_is_dropped(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", "2026-01-05T10:00:00Z"))
    january = repo.csv.part_path(ACTIVITIES, "2026-01")
    inode = january.stat().st_ino
    repo.upsert(_activity("b", "2026-01-06T10:00:00Z"))
    assert january.stat().st_ino == inode  # appended in place, not rewritten
    with january.open("ab") as handle:
        handle.write(b"c,ath1,2026-01-07T1")  # what a writer killed mid-append leaves
    assert sorted(_repo(tmp_path).read_frame()["activityId"]) == ["a", "b"]
    fresh = _repo(tmp_path)
    fresh.upsert(_activity("d", "2026-01-08T10:00:00Z"))
    assert january.read_bytes().endswith(b"\n") and b"2026-01-07T1" not in january.read_bytes()
    stored = _repo(tmp_path).read_frame().set_index("activityId")
    assert sorted(stored.index) == ["a", "b", "d"]
    assert stored.loc["d", "version"] == 1 and stored.loc["d", "durationSec"] == 600.0
    fresh.upsert(_activity("d", "2026-01-08T10:00:00Z", 700.0))  # a known key: merged
    assert _repo(tmp_path).get("d")["version"] == 2
