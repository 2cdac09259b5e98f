"""The bulk path (upsert_frame_changes, replace_scope, read_frame) on every backend: the same
rows, versions and counts as CSV, every value type round-tripping exactly through SQL's COPY /
executemany and cursor reads, and a write the database refuses leaving nothing behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from storage.errors import PersistenceError, ValidationError
from storage.frame_validation import frame_of_records
from storage.repositories.frames import rows_to_frame
from storage.sql import bulk_read
from tests.storage.repos import BACKENDS, backend_location, open_repository, repository_factory

SQL = ["sqlite", "postgresql"]

AWKWARD_TEXT = [
    "a \"quoted\" and 'apostrophe'",
    "back\\slash and \\N, the COPY null marker",
    "tab\there, new\nline, carriage\rreturn",
    "",
    "Zürich — 東京 🚴",
    "=SUM(A1)",
]


@pytest.fixture(params=BACKENDS)
def open_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    with repository_factory(request.param, tmp_path) as make:
        yield make


@pytest.fixture(params=SQL)
def open_sql_table(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    with repository_factory(request.param, tmp_path) as make:
        yield make


def awkward_sessions() -> pd.DataFrame:
    """training_sessions holds every column type but DATE (daily_metrics has that)."""
    rows = []
    for place, text in enumerate(AWKWARD_TEXT):
        rows.append(
            {
                "sessionId": f"s{place}",
                "userId": "u1",
                "userName": text,
                "date": [
                    "1969-12-31T23:59:59.5Z",
                    "2026-03-01T10:00:00+02:00",
                    "2026-01-01T00:00:00Z",
                    "2026-06-30T23:59:59.000001Z",
                    "1900-01-01T00:00:00Z",
                    "2999-12-31T12:00:00Z",
                ][place],
                "phase": None if place % 2 else text,
                "week": [2**62 + 1, -5, 0, None, 7, 2**53 + 1][place],
                "isDeloadWeek": [True, False, None, True, False, None][place],
                "durationSec": [0.1 + 0.2, 1e-300, None, 3600.0, 5e300, 12.5][place],
                "document": [
                    {"b": 1, "a": [1, 2.5, None], "name": text},
                    ["x", {"nested": {"deep": True}}],
                    "just text",
                    None,
                    {"unicode": "東京", "quote": '"'},
                    [],
                ][place],
            }
        )
    return pd.DataFrame(rows)


def test_every_value_type_round_trips_and_a_second_write_changes_nothing(open_table) -> None:
    repo = open_table("training_sessions")
    frame = awkward_sessions()
    changed, replaced = repo.upsert_frame_changes(frame)
    assert len(changed) == len(frame) and replaced.empty
    for record in frame.to_dict("records"):
        stored = repo.get(record["sessionId"])
        assert stored is not None and stored["version"] == 1
        assert stored["userName"] == record["userName"]
        assert stored["week"] == (None if pd.isna(record["week"]) else int(record["week"]))
        assert stored["document"] == record["document"]
        duration = record["durationSec"]
        assert stored["durationSec"] == (None if pd.isna(duration) else duration)
    again, _ = repo.upsert_frame_changes(frame)
    assert again.empty, "a value read back differently from what was written"
    assert [repo.get(f"s{i}")["version"] for i in range(len(frame))] == [1] * len(frame)  # type: ignore[index]


def test_the_bulk_read_matches_the_row_path(open_table) -> None:
    """Rows written one at a time (SQLAlchemy's types) read in bulk as the row path reads
    them, and rows written in bulk read one at a time as written."""
    rows_repo = open_table("training_sessions")
    records = awkward_sessions().to_dict("records")
    for record in records[:3]:
        rows_repo.upsert({k: v for k, v in record.items() if not _missing(v)})
    rows_repo.upsert_frame(pd.DataFrame(records[3:]))
    through_rows = rows_to_frame(
        rows_repo.table,
        [rows_repo.get(r["sessionId"]) for r in records],  # type: ignore[misc]
    )
    in_bulk = rows_repo.read_frame().sort_values("sessionId").reset_index(drop=True)
    pd.testing.assert_frame_equal(in_bulk, through_rows.reset_index(drop=True))


def test_versions_move_only_for_rows_that_changed(open_table) -> None:
    repo = open_table("training_sessions")
    frame = awkward_sessions()
    repo.upsert_frame_changes(frame)
    before = {r["sessionId"]: repo.get(r["sessionId"]) for r in frame.to_dict("records")}
    edited = frame.copy()
    edited.loc[1, "durationSec"] = 99.0
    edited = pd.concat([edited, pd.DataFrame([{**frame.iloc[0], "sessionId": "new"}])])
    changed, replaced = repo.upsert_frame_changes(edited)
    assert sorted(changed["sessionId"]) == ["new", "s1"]
    assert list(replaced["sessionId"]) == ["s1"] and replaced["durationSec"].iloc[0] == 1e-300
    after = repo.get("s1")
    assert after is not None and after["version"] == 2 and after["durationSec"] == 99.0
    assert after["createdAt"] == before["s1"]["createdAt"]  # type: ignore[index]
    for key in ("s0", "s2", "s3"):
        assert repo.get(key) == before[key]


def metric(activity: str, athlete: str, day: str, load: float) -> dict:
    return {"activityId": activity, "athleteId": athlete, "date": day, "load": load}


def test_a_scope_replace_gives_csvs_rows_versions_and_count(open_table) -> None:
    """Stale rows of the scope go, a row moving into the scope from an earlier day is replaced
    (not doubled), unchanged rows keep their version, other athletes are untouched."""
    repo = open_table("activities_metrics")
    first = [
        metric("A0", "a1", "2025-12-30", 10),
        metric("A1", "a1", "2026-01-01", 20),
        metric("A2", "a1", "2026-01-05", 30),
        metric("A3", "a1", "2026-02-01", 40),
        metric("A5", "a1", "2026-01-20", 50),
        metric("B1", "b1", "2026-01-06", 60),
    ]
    assert (
        repo.replace_scope(pd.DataFrame(first), {"a1": "1900-01-01", "b1": "1900-01-01"}, "date")
        == 6
    )
    second = [
        metric("A0", "a1", "2026-01-10", 10),  # moved into the scope
        metric("A2", "a1", "2026-01-06", 31),  # changed
        metric("A3", "a1", "2026-02-01", 40),  # unchanged
        metric("A4", "a1", "2026-02-03", 70),  # new
    ]  # A5 is stale; A1 is before the scope; B1 is another athlete's
    assert repo.replace_scope(pd.DataFrame(second), {"a1": "2026-01-04"}, "date") == 4
    stored = repo.read_frame().set_index("activityId")
    assert sorted(stored.index) == ["A0", "A1", "A2", "A3", "A4", "B1"]
    assert stored.loc["A0", "date"] == "2026-01-10" and stored.loc["A2", "load"] == 31
    versions = stored["version"].to_dict()
    assert versions == {"A0": 2, "A1": 1, "A2": 2, "A3": 1, "A4": 1, "B1": 1}
    assert repo.replace_scope(pd.DataFrame(second), {"a1": "2026-01-04"}, "date") == 0


def test_a_scope_replace_on_a_date_key(open_table) -> None:
    repo = open_table("daily_metrics")
    days = pd.DataFrame(
        [{"athleteId": "a1", "date": f"2026-01-{d:02d}", "load": float(d)} for d in range(1, 11)]
    )
    assert repo.replace_scope(days, {"a1": "2026-01-01"}, "date") == 10
    later = days[days["date"] >= "2026-01-06"].copy()
    later.loc[later["date"] == "2026-01-08", "load"] = 80.0
    later = later[later["date"] != "2026-01-09"]
    assert repo.replace_scope(later, {"a1": "2026-01-06"}, "date") == 2  # one changed, one gone
    stored = repo.read_frame().set_index("date")
    assert len(stored) == 9 and stored.loc["2026-01-08", "version"] == 2
    assert stored.loc["2026-01-03", "load"] == 3.0


def test_a_date_key_row_outside_the_scope_is_updated_not_doubled(open_table) -> None:
    """Rows of a (athlete, date)-keyed table that fall before the scope date, or belong to an
    athlete outside the scope, are not read with the scope: they are still looked up, so a
    stored one is updated in place instead of being written a second time."""
    repo = open_table("daily_metrics")
    days = pd.DataFrame(
        [
            {"athleteId": athlete, "date": f"2026-01-{d:02d}", "load": float(d)}
            for athlete in ("a1", "b1")
            for d in range(1, 6)
        ]
    )
    assert repo.replace_scope(days, {"a1": "2026-01-01", "b1": "2026-01-01"}, "date") == 10
    again = pd.DataFrame(
        [
            {"athleteId": "a1", "date": "2026-01-02", "load": 20.0},  # before the scope
            {"athleteId": "a1", "date": "2026-01-04", "load": 4.0},
            {"athleteId": "a1", "date": "2026-01-05", "load": 50.0},
            {"athleteId": "b1", "date": "2026-01-03", "load": 30.0},  # not in the scope
        ]
    )
    assert repo.replace_scope(again, {"a1": "2026-01-04"}, "date") == 3
    stored = repo.read_frame().set_index(["athleteId", "date"])["load"].to_dict()
    assert len(stored) == 10
    assert stored[("a1", "2026-01-02")] == 20.0 and stored[("a1", "2026-01-05")] == 50.0
    assert stored[("b1", "2026-01-03")] == 30.0 and stored[("a1", "2026-01-04")] == 4.0


def test_many_keys_are_looked_up_and_written_in_one_go(open_table) -> None:
    repo = open_table("activities_metrics")
    first = pd.DataFrame(
        [metric(f"x{i}", f"a{i % 7}", f"2026-01-{1 + i % 28:02d}", i) for i in range(3000)]
    )
    repo.upsert_frame_changes(first)
    second = pd.DataFrame(
        [metric(f"x{i}", f"a{i % 7}", f"2026-01-{1 + i % 28:02d}", i) for i in range(6000)]
    )
    second.loc[second["activityId"] == "x5", "load"] = -1.0 + 100
    changed, replaced = repo.upsert_frame_changes(second)
    assert len(changed) == 3001 and list(replaced["activityId"]) == ["x5"]
    assert len(repo.read_frame()) == 6000


def test_a_read_in_many_small_batches_is_the_same_read(open_sql_table, monkeypatch) -> None:
    repo = open_sql_table("activities_metrics")
    repo.upsert_frame(
        pd.DataFrame([metric(f"y{i}", "a1", f"2026-02-{1 + i % 28:02d}", i) for i in range(100)])
    )
    whole = repo.read_frame()
    monkeypatch.setattr(bulk_read, "STREAM_ROWS", 7)
    pd.testing.assert_frame_equal(repo.read_frame(), whole)


POISON = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON activities_metrics "
        "WHEN NEW.\"loadMethod\" = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        "CREATE TRIGGER refuse_poison_update BEFORE UPDATE ON activities_metrics "
        "WHEN NEW.\"loadMethod\" = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
        "IF NEW.\"loadMethod\" = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON activities_metrics "
        "FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}


@pytest.mark.parametrize("poisoned", ["a new row", "a changed row"])
def test_a_bulk_write_the_database_refuses_leaves_nothing_behind(
    open_sql_table, poisoned: str
) -> None:
    repo = open_sql_table("activities_metrics")
    seed = pd.DataFrame([metric(f"z{i}", "a1", "2026-03-01", i) for i in range(100)])
    repo.upsert_frame(seed)
    before = repo.read_frame().sort_values("activityId").reset_index(drop=True)
    with repo.database.engine.begin() as connection:
        for statement in POISON[repo.database.dialect]:
            connection.exec_driver_sql(statement)
    bigger = pd.DataFrame([metric(f"z{i}", "a1", "2026-03-02", i) for i in range(1000)])
    poisoned_row = 500 if poisoned == "a new row" else 50
    bigger.loc[poisoned_row, "loadMethod"] = "poison"
    with pytest.raises(PersistenceError, match="poison refused"):
        repo.upsert_frame_changes(bigger)
    with pytest.raises(PersistenceError, match="poison refused"):
        repo.replace_scope(bigger, {"a1": "2026-01-01"}, "date")
    after = repo.read_frame().sort_values("activityId").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)


session_rows = st.fixed_dictionaries(
    {
        "userName": st.one_of(
            st.none(),
            st.text(
                st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
            ),
        ),
        "week": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "isDeloadWeek": st.one_of(st.none(), st.booleans()),
        "durationSec": st.one_of(
            st.none(), st.floats(0, 1e300, allow_nan=False, allow_infinity=False)
        ),
        "date": st.datetimes(
            min_value=pd.Timestamp("1900-01-02").to_pydatetime(),
            max_value=pd.Timestamp("2999-12-30").to_pydatetime(),
        ).map(lambda moment: moment.isoformat() + "Z"),
        "document": st.one_of(
            st.none(),
            st.recursive(
                st.one_of(st.booleans(), st.integers(-1000, 1000), st.text(max_size=5)),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3)
                ),
                max_leaves=6,
            ),
        ),
    }
)


@pytest.mark.parametrize("backend", SQL)
def test_generated_rows_round_trip_through_sql(backend: str, tmp_path: Path) -> None:
    with backend_location(backend, tmp_path) as location:
        repo = open_repository(backend, location, "training_sessions")
        csv = open_repository("csv", str(tmp_path / f"csv-{backend}"), "training_sessions")

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            phases=[Phase.explicit, Phase.generate],
        )
        @given(st.lists(session_rows, min_size=1, max_size=8))
        def round_trip(rows: list[dict]) -> None:  # the rows as a producer sends them
            prefix = uuid.uuid4().hex[:8]
            frame = frame_of_records(
                repo.table,
                [
                    {**row, "sessionId": f"{prefix}-{i}", "userId": "u"}
                    for i, row in enumerate(rows)
                ],
            )
            written, _ = repo.upsert_frame_changes(frame)
            reference, _ = csv.upsert_frame_changes(frame)
            assert repo.upsert_frame_changes(frame)[0].empty
            stored = repo.read_frame({"sessionId": list(frame["sessionId"])})
            expected = csv.read_frame({"sessionId": list(frame["sessionId"])})
            data = [c.name for c in repo.table.columns]
            pd.testing.assert_frame_equal(
                _parsed(stored[data].sort_values("sessionId").reset_index(drop=True)),
                _parsed(expected[data].sort_values("sessionId").reset_index(drop=True)),
            )
            assert len(written) == len(reference)

        try:
            round_trip()
        finally:
            repo.shutdown()


def _parsed(frame: pd.DataFrame) -> pd.DataFrame:
    """JSON compared as values: SQLite keeps a bare JSON number as a number (405.0 reads back
    as 405), which the row path does too."""
    return frame.assign(document=[None if v is None else json.loads(v) for v in frame["document"]])


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


@pytest.mark.parametrize("backend", ["csv", "sqlite", "postgresql"])
def test_whole_numbers_beside_gaps_stay_exact(backend: str, tmp_path: Path) -> None:
    """pandas would make [2**62 + 1, None] float64 and round it; ingest keeps it exact, and a
    number SQL cannot store is refused by name instead of failing deep in a cast."""
    with backend_location(backend, tmp_path) as location:
        repo = open_repository(backend, location, "training_sessions")
        base = {"userId": "u", "date": "2026-01-01T00:00:00Z"}
        rows = [{**base, "sessionId": "big", "week": 2**62 + 1}, {**base, "sessionId": "gap"}]
        repo.upsert_frame(frame_of_records(repo.table, rows))
        assert repo.get("big")["week"] == 2**62 + 1  # type: ignore[index]
        too_big = [{**base, "sessionId": "huge", "week": 2**63}, {**base, "sessionId": "gap2"}]
        with pytest.raises(ValidationError, match="week is outside the whole numbers"):
            repo.upsert_frame(frame_of_records(repo.table, too_big))
        with pytest.raises(ValidationError, match="week"):
            repo.upsert({**base, "sessionId": "huge", "week": -(2**63) - 1})
        assert repo.get("huge") is None
        repo.shutdown()
