"""One set of limits for every value, the same on every backend and on read as on write: a
hand-edited CSV file or a row changed by hand in SQL is refused as it is read (CORRUPT,
naming table, column and row), the bulk path keeps every limit the row path keeps, and the
row and frame validators agree on generated values."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.errors import CorruptFile, ValidationError
from storage.frame_validation import validate_frame
from storage.settings import Settings
from storage.stores import Stores
from storage.tables import get_table
from storage.values import validate_row
from tasks.rows import upsert_rows
from tests.factories import activity

HAND_EDITS = [
    ("durationSec", "3600.0", "inf", "is not a finite number"),
    ("durationSec", "3600.0", "-5000.0", "must be at least 0"),
    ("sport", "run", "swimmingpool", "must be one of"),
    ("avgHr", "150.0", "999.0", "must be at most 260"),
]


@pytest.mark.parametrize(("column", "was", "edit", "why"), HAND_EDITS)
def test_a_hand_edited_csv_value_is_corrupt_when_read(
    stores: Stores, column: str, was: str, edit: str, why: str
) -> None:
    upsert_rows(stores, "activities", [activity(1), activity(2)])
    [month] = stores.csv.path(get_table("activities")).glob("*.csv")
    lines = month.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    assert cells[header.index(column)] == was
    cells[header.index(column)] = edit
    month.write_text("\n".join([lines[0], lines[1], ",".join(cells), ""]))
    with pytest.raises(CorruptFile) as caught:
        stores.repository("activities").read_frame()
    message = str(caught.value)
    assert message.startswith("CORRUPT:") and month.name in message
    assert f"activities.{column} of data row 2 {why}" in message


@pytest.fixture
def sql_activities(sql_settings: Settings) -> Iterator[Stores]:
    stores = Stores(sql_settings.with_(table_backends={"activities": "sql", "goals": "sql"}))
    stores.initialize()
    yield stores
    stores.close()


@pytest.mark.parametrize(("column", "was", "edit", "why"), HAND_EDITS[1:])
def test_a_row_changed_by_hand_in_sql_is_corrupt_when_read(
    sql_activities: Stores, column: str, was: str, edit: str, why: str
) -> None:
    upsert_rows(sql_activities, "activities", [activity(1)])
    value: Any = float(edit) if column != "sport" else edit
    with sql_activities.database.transaction(write=True) as connection:
        connection.execute(sa.text(f'UPDATE activities SET "{column}" = :v'), {"v": value})
    with pytest.raises(CorruptFile, match=rf"activities\.{column} of row act-athlete-1-1 {why}"):
        sql_activities.repository("activities").read_frame()


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"title": "x" * 10_001}, "longer than 10,000 characters"),
        ({"title": "a\x00b"}, "NUL character"),
        ({"title": "a\ud800b"}, "not valid Unicode"),
        ({"title": "ok", "metric": "m\x00"}, "NUL character"),
    ],
    ids=["too long", "NUL", "lone surrogate", "NUL in another column"],
)
def test_text_limits_hold_on_the_row_and_the_bulk_path_on_every_backend(
    sql_activities: Stores, row: dict[str, Any], why: str
) -> None:
    goal = {"goalId": "g1", "athleteId": "a", **row}
    with pytest.raises(ValidationError, match=why):
        sql_activities.repository("goals").upsert(goal)
    with pytest.raises(ValidationError, match=why):
        upsert_rows(sql_activities, "goals", [goal])
    assert sql_activities.repository("goals").get("g1") is None


def test_nan_in_a_json_column_is_refused_on_the_bulk_path(stores: Stores) -> None:
    template = {"templateId": "t1", "name": "x", "structure": {"load": math.nan}}
    with pytest.raises(ValidationError, match="NaN"):
        upsert_rows(stores, "templates", [template])
    with pytest.raises(ValidationError, match="structure"):
        stores.repository("templates").upsert(template)


TABLE = get_table("activities")
VALUES = {
    "activityId": st.text(max_size=5) | st.just("a\x00") | st.just("x" * 10_001),
    "athleteId": st.sampled_from(["ath", "", " ", "a\ud800"]),
    "startTime": st.sampled_from(
        ["2026-03-01T10:00:00Z", "1899-12-31T10:00:00Z", "3000-01-01T00:00:00Z", "nope"]
    ),
    "sport": st.sampled_from(["run", "ride", "swimmingpool", ""]),
    "durationSec": st.floats(allow_nan=False) | st.sampled_from([0, -1, 604_800, 604_801]),
    "avgHr": st.none() | st.floats(min_value=0, max_value=400),
    "rpe": st.none() | st.sampled_from([0, 10, 10.5, -0.1]),
    "distanceM": st.none() | st.floats(allow_nan=False, allow_infinity=True),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(VALUES))
def test_the_row_and_the_frame_validators_agree(row: dict[str, Any]) -> None:
    def verdict(check: Any) -> bool:
        try:
            check()
        except ValidationError:
            return False
        return True

    by_row = verdict(lambda: validate_row(TABLE, row))
    by_frame = verdict(lambda: validate_frame(TABLE, pd.DataFrame([row])))
    assert by_row == by_frame, row


def test_reading_a_csv_file_with_good_values_still_works(stores: Stores, tmp_path: Path) -> None:
    upsert_rows(stores, "activities", [activity(n) for n in range(5)])
    assert len(stores.repository("activities").read_frame()) == 5
