"""A writer SIGKILLed at random moments never leaves a broken CSV or loses an acknowledged row."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.csv.storage import CsvStorage
from storage.repositories.csv import CsvRepository
from storage.tables import get_table

KILLS = 30


@pytest.mark.parametrize(("table_name", "key"), [("goals", "goalId"), ("activities", "activityId")])
def test_sigkill_mid_write_keeps_file_valid_and_acknowledged_rows(
    tmp_path: Path, table_name: str, key: str
) -> None:
    """goals: whole-file rewrites; activities: appends to a month and month rewrites."""
    location, progress = tmp_path / "csv", tmp_path / "acknowledged.txt"
    storage = CsvStorage(location)
    table = get_table(table_name)
    root = Path(__file__).resolve().parents[2]
    rng = random.Random(7)
    for kill in range(KILLS):
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.storage.workers_proc",
                str(location),
                str(progress),
                table_name,
            ],
            cwd=root,
        )
        before = progress.stat().st_size if progress.exists() else 0
        started = time.monotonic()
        while time.monotonic() - started < 30 and (
            not progress.exists() or progress.stat().st_size == before
        ):
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        frame = storage.read(table)  # raises CorruptFile if the file were half written
        acknowledged = set(progress.read_text().split())
        missing = acknowledged - set(frame[key])
        assert not frame[key].duplicated().any(), f"kill {kill}: a row stored twice"
        assert not missing, f"kill {kill}: acknowledged rows lost: {sorted(missing)[:3]}"
    assert len(acknowledged) > KILLS
    leftovers = [p.name for p in location.rglob("*") if p.suffix == ".tmp"]
    assert len(leftovers) <= KILLS  # killed writers may leave temp files, never a broken CSV


FULL_DISK_APPEND = """
import resource, signal, sys
from pathlib import Path
from storage.csv.storage import CsvStorage
from storage.errors import Unavailable
from storage.repositories.csv import CsvRepository
from storage.tables import get_table

folder, limit = Path(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
repo = CsvRepository(get_table("activities"), CsvStorage(folder))
rows = [
    {"activityId": f"new-{n}", "athleteId": "ath1", "sport": "run", "durationSec": 600.0,
     "startTime": f"2026-01-{1 + n % 28:02d}T07:00:00Z"}
    for n in range(400)
]
try:
    repo.upsert_many(rows)
except Unavailable as error:
    print("refused:", error)
"""


def test_an_append_that_fills_the_disk_leaves_no_row_of_its_batch(tmp_path: Path) -> None:
    """A disk that fills part way through an append (here a file size limit, which fails the
    same way) must not leave the rows written before it filled."""
    storage = CsvStorage(tmp_path / "csv")
    repo = CsvRepository(get_table("activities"), storage)
    repo.upsert(
        {
            "activityId": "old",
            "athleteId": "ath1",
            "startTime": "2026-01-05T07:00:00Z",
            "sport": "run",
            "durationSec": 600.0,
        }
    )
    january = storage.part_path(get_table("activities"), "2026-01")
    before = january.read_bytes()
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK_APPEND, str(tmp_path / "csv"), str(len(before) + 2000)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "refused: UNAVAILABLE: cannot write" in done.stdout and "File too large" in done.stdout
    assert january.read_bytes() == before
    fresh = CsvRepository(get_table("activities"), CsvStorage(tmp_path / "csv"))
    assert fresh.read_frame()["activityId"].tolist() == ["old"]
