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
