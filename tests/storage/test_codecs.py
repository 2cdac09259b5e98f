"""One codec per column type: every type has one, and its one-value and whole-column rules,
its frame form and its CSV fields agree."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.codecs import CODECS, codec_of
from storage.tables import ColumnType

SAMPLES: dict[ColumnType, tuple[list[Any], list[Any]]] = {  # (accepted, refused)
    ColumnType.STRING: (["", "a", "ünïcode"], [1, 2.5, True]),
    ColumnType.INT: ([1, -7, "42", 3.0, 2**62], [1.5, "x", float("inf"), True]),
    ColumnType.FLOAT: ([1, 2.5, "3.25", -0.0], ["x", float("inf"), True]),
    ColumnType.BOOL: ([True, False, "true", "FALSE"], ["yes", 1.5, "0"]),
    ColumnType.DATE: (
        ["2026-03-01", date(2026, 3, 1), "0001-01-01", "2999-12-31"],  # beyond pandas 2's years
        ["2026-13-01", "soon", 20260301],
    ),
    ColumnType.DATETIME: (
        [
            "2026-03-01T05:00:00Z",
            "2026-03-01T05:00:00+02:00",
            datetime(2026, 3, 1, tzinfo=UTC),
            "0001-01-01T00:00:00Z",
            "2999-12-31T12:00:00.5Z",
        ],
        ["yesterday", 1700000000, "2026-03-01T25:00:00Z"],
    ),
    ColumnType.JSON: ([{"a": [1, 2]}, [], "text", 3], [{1, 2}, object()]),
}


def test_every_column_type_has_one_codec() -> None:
    assert set(CODECS) == set(ColumnType)


@pytest.mark.parametrize("kind", list(ColumnType), ids=str)
def test_one_value_and_a_whole_column_accept_and_refuse_alike(kind: ColumnType) -> None:
    codec = codec_of(kind)
    accepted, refused = SAMPLES[kind]
    for value in accepted:
        codec.coerce(value)
    for value in refused:
        with pytest.raises((TypeError, ValueError)):
            codec.coerce(value)
    for values, ok in ((accepted, True), (refused, False)):
        for value in values:
            series = pd.Series([value], dtype=object)
            _, problems = codec.coerce_series(series, series.isna().to_numpy())
            assert any(bad.any() for bad, _ in problems) is not ok, (kind, value)


@pytest.mark.parametrize("kind", list(ColumnType), ids=str)
def test_canonical_values_survive_the_frame_form(kind: ColumnType) -> None:
    codec = codec_of(kind)
    for value in SAMPLES[kind][0]:
        canonical = codec.coerce(value)
        assert codec.from_frame(codec.to_frame(canonical)) == canonical


@given(st.integers(-(2**63) + 1, 2**63 - 1))
def test_whole_numbers_keep_every_digit(number: int) -> None:
    codec = codec_of(ColumnType.INT)
    assert codec.coerce(str(number)) == number
    assert codec.csv_cells(pd.Series([number], dtype="Int64")) == [str(number)]
    assert codec.csv_cell(number) == str(number)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_written_exactly(number: float) -> None:
    codec = codec_of(ColumnType.FLOAT)
    (field,) = codec.csv_cells(pd.Series([number]))  # type: ignore[misc]
    assert float(field) == number and field == codec.csv_cell(number)
