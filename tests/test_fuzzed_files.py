"""Fuzzed files: random byte damage to one CSV table file of a demo data set, or to
session JSON files, and then every reader and writer that meets it. Each either works or
raises a PersistenceError (CORRUPT naming the file, mostly) — never a ValueError, TypeError
or another library error from deep inside — and a refused write leaves the file as it was.
The other way round: odd values a write accepts, a read takes back."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from storage.csv.storage import CsvStorage
from storage.errors import PersistenceError
from storage.repositories.csv import CsvRepository
from storage.settings import Settings
from storage.stores import Stores
from storage.tables import TABLES, ColumnType
from tasks import reconcile, rows, sessions
from tasks.metrics import recompute
from workers.demo_data import DemoData, generate

ROUNDS = 30
STAMP = {"dataModelVersion": 1, "dataModelType": "training_session_log"}
INSERTS = [
    b",",
    b"\n",
    b'"',
    b"\r",
    b"\x00",
    b"\xff\xfe",
    b"NaN",
    b";",
    b"\xef\xbb\xbf",
    b"[",
    b"\\",
]


# what a hand edit leaves in a cell: half a date, a fraction, a cleared value, a zone's prefix
CELLS = ["", "2026-03-", "2026-3-1", "1.5", "9" * 22, "NaN", "America", '["a"', "yes", "\\", "-1"]


def damage(data: bytes, rng: random.Random) -> bytes:
    """Random byte edits, or (CSV) one cell replaced by what a careless hand edit leaves."""
    lines = data.split(b"\n")
    if data.startswith(b"{") or len(lines) < 3 or rng.random() < 0.5:
        return damage_bytes(data, rng)
    row = rng.randrange(1, len(lines) - 1)
    cells = lines[row].split(b",")
    cells[rng.randrange(len(cells))] = rng.choice(CELLS).encode()
    lines[row] = b",".join(cells)
    return b"\n".join(lines)


def damage_bytes(data: bytes, rng: random.Random) -> bytes:
    """A few random edits: a byte changed, a run cut out, a stray character put in, a cut end."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at, roll = (rng.randrange(len(out)) if out else 0), rng.random()
        if roll < 0.3 and out:
            out[at] = rng.randrange(256)
        elif roll < 0.5 and out:
            del out[at : at + rng.randint(1, 50)]
        elif roll < 0.8:
            out[at:at] = rng.choice(INSERTS)
        else:
            del out[rng.randrange(len(out) + 1) :]
    return bytes(out)


def works_or_refuses(what: str, action: Callable[[], Any]) -> bool:
    """True when the action was refused with a PersistenceError."""
    try:
        action()
    except PersistenceError:
        return True
    except Exception as error:  # the finding: name the step and the library error
        pytest.fail(f"{what}: {type(error).__name__}: {error}")
    return False


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(months=2, seed=7)


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory, demo: DemoData) -> Path:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    stores = Stores(Settings.for_home(home))
    stores.initialize()
    for table, table_rows in (
        ("athlete", demo.athlete),
        ("thresholds", demo.thresholds),
        ("planned_sessions", demo.planned),
    ):
        rows.upsert_rows(stores, table, table_rows)
    rows.ingest_activities(stores, demo.activities)
    for session in demo.sessions[:4]:
        sessions.save_session(stores, session)
    recompute.recompute_many(stores, {demo.athlete[0]["athleteId"]: None})
    stores.close()
    return home


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_a_damaged_csv_file_is_refused_clearly(
    seeded_home: Path, demo: DemoData, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    home = tmp_path / "home"
    shutil.copytree(seeded_home, home)
    stores = Stores(Settings.for_home(home))
    target = rng.choice(sorted(stores.settings.data_dir.rglob("*.csv")))
    target.write_bytes(damage(target.read_bytes(), rng))
    athlete = demo.athlete[0]["athleteId"]
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"list {t}", lambda t=t: stores.repository(t).list({}, limit=100_000))
        for t in ("activities", "athlete", "thresholds", "planned_sessions", "daily_metrics")
    ]
    steps += [
        ("recompute", lambda: recompute.recompute_many(stores, {athlete: None})),
        ("nightly rollup", lambda: recompute.nightly_rollup(stores)),
        ("ingest", lambda: rows.ingest_activities(stores, demo.activities[:3])),
        ("upsert plan", lambda: rows.upsert_rows(stores, "planned_sessions", demo.planned[:2])),
        ("save session", lambda: sessions.save_session(stores, demo.sessions[5])),
    ]
    for what, action in steps:
        before = target.read_bytes()
        if works_or_refuses(f"{what} after damage to {target.name} (seed {seed})", action):
            assert target.read_bytes() == before, f"{what} was refused but changed {target}"
    stores.close()


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_damaged_session_files_are_reported_per_file(
    tmp_path: Path, demo: DemoData, seed: int
) -> None:
    rng = random.Random(seed)
    stores = Stores(Settings.for_home(tmp_path / "home"))
    stores.initialize()
    folder = stores.settings.import_dir / "batch"
    folder.mkdir(parents=True)
    for n, session in enumerate(demo.sessions[:4]):
        text = json.dumps({**session, **STAMP}, indent=rng.choice([None, 2])).encode()
        (folder / f"s{n}.json").write_bytes(damage(text, rng) if n else text)
    result: dict[str, Any] = {}
    works_or_refuses("import", lambda: result.update(sessions.import_sessions(stores, "batch")))
    assert result["imported"] >= 1  # the undamaged file
    assert result["imported"] + result["unchanged"] + len(result["errors"]) == 4
    export = next(stores.settings.export_dir.glob("*.json"))
    export.write_bytes(damage(export.read_bytes(), rng))
    works_or_refuses("reconcile", lambda: reconcile.reconcile_exports(stores))
    stores.close()


# values a producer might send for any column: each write either refuses it or stores it so
# that the read checks (storage/csv/checks.py) take it back
ODD_VALUES: list[Any] = [
    "",
    " ",
    "\\",
    "\x00",
    "\r\n",
    '"',
    ",",
    "UTC",
    "America",
    "Etc/GMT+5",
    "2026-3-1",
    "2026-03-01T07:00:00+05:30",
    "2026-03-01 07:00",
    "1900-01-01T00:00:00-12:00",
    "2999-12-31T23:59:59+14:00",
    "2999-12-31",
    0,
    -1,
    1.5,
    1e9,
    True,
    None,
    [],
    {},
    {"a": [1, None]},
    "é" * 3,
    "x" * 2000,
]
PLAIN_VALUES = {
    ColumnType.STRING: "s",
    ColumnType.INT: 3,
    ColumnType.FLOAT: 2.5,
    ColumnType.BOOL: True,
    ColumnType.DATE: "2026-03-02",
    ColumnType.DATETIME: "2026-03-02T07:00:00Z",
    ColumnType.JSON: ["x"],
}


def write_row(repository: CsvRepository, row: dict[str, Any], *, bulk: bool) -> None:
    repository.upsert_frame(pd.DataFrame([row])) if bulk else repository.add(row)


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_what_a_write_stores_a_read_takes_back(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for case in range(20):
        table = rng.choice([t for t in TABLES.values() if t.backend == "csv"])
        storage = CsvStorage(tmp_path / f"{case}")
        row: dict[str, Any] = {
            c.name: rng.choice(c.choices)
            if c.choices
            else "Europe/Berlin"
            if c.timezone
            else PLAIN_VALUES[c.type]
            for c in table.columns
        }
        for column in rng.sample(table.columns, min(2, len(table.columns))):
            row[column.name] = rng.choice(ODD_VALUES)
        repository = CsvRepository(table, storage)
        write = partial(write_row, repository, row, bulk=rng.random() < 0.5)
        if works_or_refuses(f"write {table.name} {row}", write):
            continue
        try:
            storage.read(table)
            repository.list({})
        except PersistenceError as error:
            pytest.fail(f"{table.name} stored {row} and then refused to read it: {error}")
