"""Key lists beside month files: appended to in place, trusted only while they match the
month, and read instead of the month by a new process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storage.csv import keylists
from storage.csv.cache import file_signature
from storage.csv.keylists import (
    HEADER_BYTES,
    MERGE_ADDED,
    KeyCache,
    PartKeys,
    _read_list,
    sidecar_path,
)
from storage.csv.storage import CsvStorage
from storage.repositories.csv import CsvRepository
from storage.tables import get_table

ACTIVITIES = get_table("activities")


def _activity(activity_id: str, day: int) -> dict:
    return {
        "activityId": activity_id,
        "athleteId": "ath1",
        "startTime": f"2026-01-{day:02d}T10:00:00Z",
        "sport": "run",
        "durationSec": 600.0,
    }


def _repo(tmp_path: Path) -> CsvRepository:
    return CsvRepository(ACTIVITIES, CsvStorage(tmp_path))


def _listed(month: Path) -> list[str] | None:
    signature = file_signature(month)
    assert signature is not None
    found = _read_list(month, signature)
    return None if found is None else found[0].tolist()


def test_single_row_saves_append_to_the_key_list_in_place(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", 1))
    month = repo.csv.part_path(ACTIVITIES, "2026-01")
    inode = sidecar_path(month).stat().st_ino
    for n in range(2, 30):
        repo.upsert(_activity(f"k{n}", n))
    assert sidecar_path(month).stat().st_ino == inode  # never rewritten whole
    assert _listed(month) == ["a", *[f"k{n}" for n in range(2, 30)]]
    repo.upsert({**_activity("k5", 5), "durationSec": 900.0})  # an update adds no key
    listed = _listed(month)
    assert listed is not None and sorted(listed) == sorted(repo.read_frame()["activityId"])
    assert len(listed) == 29


def test_a_list_whose_header_lags_its_keys_is_read_from_the_month(tmp_path: Path) -> None:
    """What a process killed between appending keys and rewriting the header leaves."""
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", 1))
    month = repo.csv.part_path(ACTIVITIES, "2026-01")
    with sidecar_path(month).open("ab") as handle:
        handle.write(b"\nghost")  # a key the month does not hold
    assert _listed(month) is None
    fresh = _repo(tmp_path)  # a new process: must not believe the list
    assert fresh.csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["ghost"]})) == set()
    assert fresh.csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["a"]})) == {"2026-01"}
    fresh.upsert(_activity("b", 2))
    assert _listed(month) == ["a", "b"]  # rebuilt from the month, then kept up


def test_a_list_rewritten_by_another_process_is_not_appended_to_blindly(tmp_path: Path) -> None:
    first, second = _repo(tmp_path), _repo(tmp_path)
    first.upsert(_activity("a", 1))
    second.upsert(_activity("b", 2))  # second's append: first's memory of the list is stale
    first.upsert(_activity("c", 3))
    second.upsert(_activity("d", 4))
    month = first.csv.part_path(ACTIVITIES, "2026-01")
    assert _listed(month) == ["a", "b", "c", "d"]
    assert sorted(_repo(tmp_path).read_frame()["activityId"]) == ["a", "b", "c", "d"]


def test_another_process_appends_are_read_as_a_tail_not_the_whole_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _repo(tmp_path), _repo(tmp_path)
    first.upsert(_activity("a", 1))
    second.upsert(_activity("b", 2))  # second reads the list whole once
    first.upsert(_activity("c", 3))

    def whole_list_read(*_: object) -> None:
        raise AssertionError("the whole key list was read again")

    monkeypatch.setattr(keylists, "_read_list", whole_list_read)
    for n in range(4, 12):  # the two processes take turns, as two pool children do
        (first if n % 2 else second).upsert(_activity(f"k{n}", n))
    for repo in (first, second):
        found = repo.csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["b", "k10", "k11"]}))
        assert found == {"2026-01"}
    monkeypatch.undo()
    month = first.csv.part_path(ACTIVITIES, "2026-01")
    assert _listed(month) == ["a", "b", "c", *[f"k{n}" for n in range(4, 12)]]


def test_a_list_rewritten_whole_by_another_process_is_not_read_as_a_tail(tmp_path: Path) -> None:
    first, second = _repo(tmp_path), _repo(tmp_path)
    first.upsert(_activity("a", 1))
    first.upsert(_activity("b", 2))
    second.delete("a")  # the month is rewritten without "a": a new list, a new generation
    second.upsert(_activity("c", 3))
    assert first.csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["a"]})) == set()
    assert first.csv.locate(ACTIVITIES, pd.DataFrame({"activityId": ["c"]})) == {"2026-01"}
    first.upsert(_activity("a", 4))  # new again: appended, not merged into a stale view
    assert sorted(_repo(tmp_path).read_frame()["activityId"]) == ["a", "b", "c"]


def test_a_month_edited_by_another_tool_invalidates_the_list(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", 1))
    month = repo.csv.part_path(ACTIVITIES, "2026-01")
    with month.open("a") as handle:
        handle.write("b,ath1,2026-01-09T10:00:00Z,run,60.0" + "," * 10 + "\n")
    assert _listed(month) is None
    assert sidecar_path(month).read_bytes()[:HEADER_BYTES].startswith(b"trainlog-keys 3 ")
    repo.upsert(_activity("c", 3))  # the cache sees the changed signature and re-reads
    assert _listed(month) == ["a", "b", "c"]


def test_part_keys_find_appended_keys_before_and_after_they_are_merged() -> None:
    keys = PartKeys(pd.Index(["a", "b"], dtype=object))
    keys.extend(["c"])
    assert "c" in keys and "a" in keys and "z" not in keys
    assert keys.any_in(pd.Index(["z", "c"])) and not keys.any_in(pd.Index(["z"]))
    many = [f"n{i}" for i in range(MERGE_ADDED + 1)]
    keys.extend(many)
    assert len(keys.index) == MERGE_ADDED + 4  # merged into the hashed index
    assert all(key in keys for key in ("a", "c", many[0], many[-1]))
    assert len(keys) == MERGE_ADDED + 4


def test_keys_that_cannot_be_listed_leave_no_list(tmp_path: Path) -> None:
    month = tmp_path / "2026-01.csv"
    month.write_text("key\n")
    cache = KeyCache()
    cache.remember(month, pd.Index(["with\nnewline"], dtype=object))
    assert not sidecar_path(month).exists()
    before = file_signature(month)
    with month.open("a") as handle:
        handle.write("x\n")
    cache.appended(month, before, ["x"])
    assert not sidecar_path(month).exists()
    assert "x" in cache.keys(month, lambda: pd.Index([], dtype=object))


def test_a_list_changed_behind_this_process_is_written_whole(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.upsert(_activity("a", 1))
    month = repo.csv.part_path(ACTIVITIES, "2026-01")
    sidecar_path(month).write_bytes(b"garbage")  # the month itself is unchanged
    repo.upsert(_activity("b", 2))  # this process still knows the keys; the file is not trusted
    assert _listed(month) == ["a", "b"]
