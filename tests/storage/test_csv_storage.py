"""CsvStorage: round-trip, lock timeout, header migration, secrets."""

from __future__ import annotations

import csv
import math
import multiprocessing
import stat
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.csv.storage import CsvStorage
from storage.errors import CorruptFile, LockTimeout
from storage.locks import acquire_lock
from storage.repositories.csv import CsvRepository
from storage.tables import Column, ColumnType, Table, get_table
from storage.values import YEARS

ALL_TYPES = Table(
    "everything",
    ("id",),
    (
        Column("id", ColumnType.STRING, required=True),
        Column("s", ColumnType.STRING),
        Column("i", ColumnType.INT),
        Column("f", ColumnType.FLOAT),
        Column("b", ColumnType.BOOL),
        Column("d", ColumnType.DATE),
        Column("t", ColumnType.DATETIME),
        Column("j", ColumnType.JSON),
    ),
)
AWKWARD = st.sampled_from(
    [
        "",
        "NA",
        "null",
        "None",
        "n/a",
        "nan",
        "007",
        "\\",
        "\\\\N",
        " ",
        "a,b",
        'say "hi"',
        "line\nbreak",
        "1e5",
        "-0",
        "TRUE",
        "ünï©ødé",
        '=HYPERLINK("http://x")',
        "+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "'",
        "''",
        "'=x",
        "'-",
        "'plain",
    ]
)
TEXT = st.one_of(
    AWKWARD,
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\x00"), max_size=30),
)
ROWS = st.fixed_dictionaries(
    {
        "s": st.none() | TEXT,
        "i": st.none() | st.integers(-(2**62), 2**62),
        "f": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "b": st.none() | st.booleans(),
        "d": st.none() | st.dates(date(YEARS[0], 1, 1), date(YEARS[1], 12, 31)),
        "t": st.none()
        | st.datetimes(
            datetime(YEARS[0], 1, 1), datetime(YEARS[1], 12, 31, 23, 59), timezones=st.just(UTC)
        ),
        "j": st.none() | st.dictionaries(st.text(max_size=5), st.integers() | TEXT, max_size=3),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROWS, min_size=1, max_size=8))
def test_every_type_round_trips_exactly(tmp_path: Path, rows: list[dict]) -> None:
    repo = CsvRepository(ALL_TYPES, CsvStorage(tmp_path / f"rt{time.time_ns()}"))
    originals = [{"id": f"r{n}", **row} for n, row in enumerate(rows)]
    repo.upsert_many(originals)
    stored_rows = {row["id"]: row for row in repo.list(limit=100).rows}
    for original in originals:
        stored = stored_rows[original["id"]]
        for name, value in original.items():
            got = stored[name]
            if isinstance(value, float) and value == 0.0:
                assert got == 0.0 and math.copysign(1, got) == math.copysign(1, value)
            else:
                assert got == value, name
                assert type(got) is type(value), name


FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tTAB", "'=quoted", "''"]


def test_formula_texts_are_neutralised_in_the_file_and_read_back_as_written(
    tmp_path: Path,
) -> None:
    """A coach opening the file in a spreadsheet sees text, never a formula (OWASP: a leading
    quote); every path that writes text does it (whole file, monthly parts, appends)."""
    storage = CsvStorage(tmp_path)
    goals = CsvRepository(get_table("goals"), storage)
    goals.upsert_many(
        [{"goalId": f"g{n}", "athleteId": "a", "title": text} for n, text in enumerate(FORMULAS)]
    )
    activities = CsvRepository(get_table("activities"), storage)
    rows = [
        {"activityId": f"=a{n}", "athleteId": "-ath", "startTime": "2026-03-01T10:00:00Z",
         "sport": "run", "durationSec": 60.0, "name": text}
        for n, text in enumerate(FORMULAS)
    ]  # fmt: skip
    activities.upsert_many(rows[:3])
    activities.upsert_many(rows[3:])  # appended to the month's file
    activities.upsert_frame(pd.DataFrame([{**rows[0], "name": "@again"}]))
    for path in [
        storage.path(get_table("goals")),
        *storage.path(get_table("activities")).glob("*.csv"),
    ]:
        for line in path.read_text().splitlines()[1:]:
            for cell in next(csv.reader([line])):
                assert not cell or cell[0] not in "=+-@\t\r", (path.name, cell)
    assert sorted(row["title"] for row in goals.list(limit=50).rows) == sorted(FORMULAS)
    names = {row["activityId"]: row["name"] for row in activities.list(limit=50).rows}
    assert names == {f"=a{n}": text for n, text in enumerate(FORMULAS)} | {"=a0": "@again"}
    assert {row["athleteId"] for row in activities.list(limit=50).rows} == {"-ath"}


def test_missing_and_empty_file_read_as_empty_table(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path / "new" / "nested"), get_table("goals")
    assert list(storage.read(table).columns) == table.headers
    storage.path(table).write_text("")
    assert storage.read(table).empty
    assert storage.folder.is_dir()


def hold_lock(lock_path: str, seconds: float, ready) -> None:
    with acquire_lock(Path(lock_path), exclusive=True, timeout=5):
        ready.set()
        time.sleep(seconds)


def test_lock_timeout_names_the_file(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path, lock_timeout=0.3), get_table("goals")
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_lock, args=(str(storage.lock_path(table)), 3, ready))
    holder.start()
    try:
        assert ready.wait(20)
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            storage.upsert(table, [{"goalId": "g", "athleteId": "a", "title": "t"}])
        assert 0.25 <= time.monotonic() - started < 2.5
        assert "goals.csv" in str(caught.value) and caught.value.transient
        assert caught.value.path == str(storage.path(table))
    finally:
        holder.join()
    assert not storage.path(table).exists()  # nothing was half written


def test_header_migration_keeps_values_and_unknown_columns(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path), get_table("athlete")
    storage.path(table).write_text(
        "athleteId,name,legacyNote\nA1,Ana,keep me\n007,NA,\\\n", encoding="utf-8"
    )
    added = storage.migrate_headers(table)
    assert set(added) == {"timezone", "coachId", "birthYear", "createdAt", "updatedAt", "version"}
    header = storage.path(table).read_text().splitlines()[0].split(",")
    assert header[: len(table.headers)] == table.headers and header[-1] == "legacyNote"
    frame = storage.read(table).set_index("athleteId")
    assert frame.loc["A1", "legacyNote"] == "keep me" and frame.loc["007", "name"] == "NA"
    assert frame.loc["007", "legacyNote"] == ""
    assert storage.migrate_headers(table) == []
    repo = CsvRepository(table, storage)
    repo.update("A1", {"timezone": "Europe/Oslo"})
    assert storage.read(table).set_index("athleteId").loc["A1", "legacyNote"] == "keep me"


def test_tokens_file_is_private(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path), get_table("tokens")
    CsvRepository(table, storage).upsert(
        {"athleteId": "a", "provider": "strava", "accessToken": "s3cr3t"}
    )
    assert stat.S_IMODE(storage.path(table).stat().st_mode) == 0o600
    assert stat.S_IMODE(storage.lock_path(table).stat().st_mode) == 0o600


@pytest.mark.parametrize("count", ["many", "1.5", "NaN", "9" * 22])
def test_corrupt_file_is_a_clear_error(tmp_path: Path, count: str) -> None:
    """A whole-number column holding text, a fraction or a number beyond 64 bits."""
    storage, table = CsvStorage(tmp_path), get_table("daily_metrics")
    storage.part_path(table, "2026-01").parent.mkdir(parents=True)
    storage.part_path(table, "2026-01").write_text(
        f"athleteId,date,activityCount\na,2026-01-01,{count}\n"
    )
    with pytest.raises(CorruptFile) as caught:
        storage.read(table)
    assert "daily_metrics/2026-01.csv" in str(caught.value)


@pytest.mark.parametrize("first", [True, False])
def test_a_row_with_a_field_too_many_is_refused_not_shifted(tmp_path: Path, first: bool) -> None:
    """An unquoted comma in a hand-edited name: pandas would read the first column of such a
    first row as an index, and the next write would store every value one column over (the
    athlete renamed "Smith", its id gone)."""
    storage, table = CsvStorage(tmp_path), get_table("athlete")
    good, bad = "ath2,Ann,UTC", "ath1,Smith, John,Europe/Berlin"
    rows = [bad, good] if first else [good, bad]
    damaged = "athleteId,name,timezone\n" + "\n".join(rows) + "\n"
    storage.path(table).write_text(damaged)
    with pytest.raises(CorruptFile, match="4 fields" if first else "saw 4") as caught:
        storage.read(table)
    assert "athlete.csv" in str(caught.value)
    with pytest.raises(CorruptFile):
        CsvRepository(table, storage).upsert({"athleteId": "ath3", "name": "Cy"})
    assert storage.path(table).read_text() == damaged  # left for a person to repair


def test_rows_under_a_damaged_header_are_refused_not_rewritten(tmp_path: Path) -> None:
    """A header that lost the key column (a damaged first line) must not read as rows with
    no key, which the next write would keep forever under an unknown column."""
    storage, table = CsvStorage(tmp_path), get_table("thresholds")
    damaged = "thresh\x00oldId,athleteId,sport,validFrom,ftpW\nt1,ath,ride,2026-01-01,250\n"
    storage.path(table).write_text(damaged)
    with pytest.raises(CorruptFile, match="thresholdId"):
        storage.read(table)
    with pytest.raises(CorruptFile):
        CsvRepository(table, storage).upsert(
            {"thresholdId": "t2", "athleteId": "ath", "sport": "run", "validFrom": "2026-02-01"}
        )
    assert storage.path(table).read_text() == damaged  # left for a person to repair


@pytest.mark.parametrize(
    "cell, column",
    [("2026-03-", "startTime"), ("yesterday", "startTime"), ("2026-02-30T07:00:00Z", "updatedAt")],
)
def test_a_date_cell_that_does_not_parse_is_corrupt_and_named(
    tmp_path: Path, cell: str, column: str
) -> None:
    """A hand-edited timestamp: every reader (rows, metrics, a write's merge) gets CORRUPT
    naming the file, column and cell, and the file is left for a person to repair."""
    storage, table = CsvStorage(tmp_path), get_table("activities")
    month = storage.part_path(table, "2026-03")
    month.parent.mkdir(parents=True)
    cells = {"startTime": "2026-03-01T07:00:00Z", "updatedAt": "2026-03-01T08:00:00Z", column: cell}
    damaged = (
        "activityId,athleteId,startTime,sport,durationSec,updatedAt\n"
        f"a1,ath,{cells['startTime']},run,3600,{cells['updatedAt']}\n"
    )
    month.write_text(damaged)
    repo = CsvRepository(table, storage)
    for read in (lambda: storage.read(table), lambda: repo.get("a1")):
        with pytest.raises(CorruptFile) as caught:
            read()
        message = str(caught.value)
        assert "activities/2026-03.csv" in message and column in message and cell in message
    with pytest.raises(CorruptFile):
        repo.upsert(
            {"activityId": "a2", "athleteId": "ath", "startTime": "2026-03-01T09:00:00Z",
             "sport": "run", "durationSec": 60}
        )  # fmt: skip
    assert month.read_text() == damaged


def test_a_row_missing_a_required_value_is_corrupt_and_named(tmp_path: Path) -> None:
    """A threshold with no validFrom (a cell cleared by hand) stopped the nightly rollup with
    'NaTType does not support strftime'."""
    storage, table = CsvStorage(tmp_path), get_table("thresholds")
    storage.path(table).write_text(
        "thresholdId,athleteId,sport,validFrom,ftpW\nt1,ath,ride,2026-01-01,250\nt2,ath,run,,\n"
    )
    with pytest.raises(CorruptFile, match=r"thresholds\.csv: data row 2 has no validFrom"):
        storage.read(table)


@pytest.mark.parametrize("zone", ["America", "../etc/passwd", "Mars/Olympus_Mons"])
def test_a_timezone_cell_that_names_no_zone_is_corrupt(tmp_path: Path, zone: str) -> None:
    storage, table = CsvStorage(tmp_path), get_table("athlete")
    storage.path(table).write_text(f"athleteId,name,timezone\nath,Ana,{zone}\n")
    with pytest.raises(CorruptFile, match="not an IANA timezone"):
        storage.read(table)


def test_a_json_cell_that_does_not_parse_is_corrupt(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path), get_table("planned_metrics")
    storage.path(table).write_text(
        'plannedSessionId,athleteId,date,activityIds\np1,ath,2026-01-01,"[""a1"", ""a2"""\n'
    )
    with pytest.raises(CorruptFile, match=r"activityIds of data row 1 .* not JSON"):
        storage.read(table)


def test_hand_written_dates_that_pandas_reads_are_read_by_every_reader(tmp_path: Path) -> None:
    """'2026-3-1' and '07:5:00' pass the read check (pandas parses them), so the row reader,
    stricter on its own, must read them too rather than fail later."""
    storage, table = CsvStorage(tmp_path), get_table("planned_sessions")
    storage.path(table).write_text(
        "plannedSessionId,athleteId,date,sport\np1,ath,2026-3-1,run\np2,ath,2999-12-31,run\n"
    )
    assert CsvRepository(table, storage).get("p1")["date"] == date(2026, 3, 1)
    assert CsvRepository(table, storage).get("p2")["date"] == date(2999, 12, 31)  # pandas 2: NaT
    activities = get_table("activities")
    month = storage.part_path(activities, "2026-03")
    month.parent.mkdir(parents=True)
    month.write_text(
        "activityId,athleteId,startTime,sport,durationSec\na1,ath,2026-03-01T07:5:00Z,run,60\n"
    )
    stored = CsvRepository(activities, storage).get("a1")["startTime"]
    assert stored == datetime(2026, 3, 1, 7, 5, tzinfo=UTC)


def test_a_damaged_header_stops_an_append_too(tmp_path: Path) -> None:
    """A new activity goes to the end of its month without reading the rows: the header it
    checks is named as the damage, not a ValueError."""
    storage, table = CsvStorage(tmp_path), get_table("activities")
    month = storage.part_path(table, "2026-03")
    month.parent.mkdir(parents=True)
    damaged = "activityId,athleteId,startTime,sport,sport,durationSec\n"
    month.write_text(damaged)
    with pytest.raises(CorruptFile, match="repeats or leaves out a column"):
        CsvRepository(table, storage).upsert(
            {"activityId": "a1", "athleteId": "ath", "startTime": "2026-03-01T07:00:00Z",
             "sport": "run", "durationSec": 60}
        )  # fmt: skip
    assert month.read_text() == damaged


def test_a_header_that_does_not_parse_as_csv_is_corrupt(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path), get_table("goals")
    storage.path(table).write_bytes(b"goalId,athl\reteId,title\ng1,a,t\n")
    with pytest.raises(CorruptFile, match="goals"):
        storage.read(table)


def test_a_file_saved_by_a_spreadsheet_reads_and_takes_new_rows(tmp_path: Path) -> None:
    """Byte-order mark and CRLF line ends (Excel's 'CSV UTF-8'), in a whole table and in a
    month that new rows are appended to."""
    storage = CsvStorage(tmp_path)
    thresholds = get_table("thresholds")
    storage.path(thresholds).write_bytes(
        b"\xef\xbb\xbfthresholdId,athleteId,sport,validFrom,ftpW\r\nt1,ath,ride,2026-01-01,250\r\n"
    )
    repo = CsvRepository(thresholds, storage)
    assert repo.get("t1")["ftpW"] == 250.0
    repo.upsert(
        {"thresholdId": "t2", "athleteId": "ath", "sport": "run", "validFrom": "2026-02-01"}
    )
    assert sorted(storage.read(thresholds)["thresholdId"]) == ["t1", "t2"]
    activities = get_table("activities")
    month = storage.part_path(activities, "2026-03")
    month.parent.mkdir(parents=True)
    month.write_bytes(
        b"\xef\xbb\xbfactivityId,athleteId,startTime,sport,durationSec\r\n"
        b"a1,ath,2026-03-01T07:00:00Z,run,3600\r\n"
    )
    runs = CsvRepository(activities, storage)
    runs.upsert(
        {"activityId": "a2", "athleteId": "ath", "startTime": "2026-03-02T07:00:00Z",
         "sport": "ride", "durationSec": 5400}
    )  # fmt: skip
    assert runs.get("a1")["durationSec"] == 3600.0 and runs.get("a2")["sport"] == "ride"
    assert len(storage.read(activities)) == 2


def test_batch_upsert_replaces_and_appends(tmp_path: Path) -> None:
    storage, table = CsvStorage(tmp_path), get_table("goals")
    storage.upsert(
        table, [{"goalId": f"g{i}", "athleteId": "a", "title": "old"} for i in range(1000)]
    )
    storage.upsert(
        table,
        pd.DataFrame(
            {"goalId": ["g5", "new"], "athleteId": ["a", "a"], "title": ["fresh", "fresh"]}
        ),
    )
    frame = storage.read(table).set_index("goalId")
    assert len(frame) == 1001 and frame.loc["g5", "title"] == "fresh"
    assert (frame["title"] == "old").sum() == 999
    assert storage.delete(table, [("g1",), ("g2",), ("ghost",)]) == 2


@pytest.mark.parametrize(
    "row",
    [
        "ath,strava,tok,ref,2026-01-01T00:00:00Z,read,,,S3cr3t",  # a token where a number goes
        "ath,strava,S3cr3t,ref,2026-01-01T00:00:00Z,read,,,1,extra",  # a field too many
        "ath,strava,tok,ref,S3cr3t,read,,,1",  # a token where a time goes
        "ath,strava,tok,ref,2026-01-01T00:00:00Z,read,,," + "S3cr3t" + "A" * 320,  # a long one
        "ath,strava,tok,ref,2026-01-01T00:00:00Z,read,,,ab'S3cr3t",  # holding a quote
    ],
)
def test_a_damaged_tokens_file_is_corrupt_without_its_values(tmp_path: Path, row: str) -> None:
    """pandas quotes the cell it could not read; of the tokens table that may be a token,
    which then went into the job's error, the worker's log and the failure record."""
    storage, table = CsvStorage(tmp_path), get_table("tokens")
    header = (
        "athleteId,provider,accessToken,refreshToken,expiresAt,scope,createdAt,updatedAt,version"
    )
    storage.path(table).write_text(f"{header}\n{row}\n")
    with pytest.raises(CorruptFile) as caught:
        storage.read(table)
    assert "tokens.csv" in str(caught.value) and "S3cr3t" not in str(caught.value)


def test_a_key_pasted_twice_into_a_file_is_corrupt_naming_it(tmp_path: Path) -> None:
    """Read as it is, the activity would count twice in the day's load, and every later write
    of that month would fail inside pandas, naming neither the file nor the key."""
    storage, table = CsvStorage(tmp_path), get_table("activities")
    month = storage.part_path(table, "2026-11")
    month.parent.mkdir(parents=True)
    header = "activityId,athleteId,startTime,sport,durationSec"
    rows = ["r1,ath,2026-11-02T07:00:00Z,run,3600", "r2,ath,2026-11-03T07:00:00Z,run,1800"]
    damaged = "\n".join([header, *rows, rows[0]]) + "\n"
    month.write_text(damaged)
    with pytest.raises(CorruptFile, match="data row 3 repeats the key r1") as caught:
        storage.read(table)
    assert "activities/2026-11.csv" in str(caught.value)
    with pytest.raises(CorruptFile):
        CsvRepository(table, storage).upsert(
            {"activityId": "r3", "athleteId": "ath", "startTime": "2026-11-04T07:00:00Z",
             "sport": "run", "durationSec": 60.0}
        )  # fmt: skip
    assert month.read_text() == damaged  # left for a person to repair
