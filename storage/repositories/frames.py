"""Canonical rows <-> frame form (dates, timestamps and JSON as text; ints nullable)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from storage.codecs import codec_of
from storage.codecs.base import is_missing
from storage.codecs.structured import datetime_to_text as datetime_to_text
from storage.tables import ColumnType, Table
from storage.values import Row, parse_datetime

MTIME_SLACK_SECONDS = 2.0  # coarse file-system timestamps (some keep 1-2 s resolution)


def cell_to_frame(kind: ColumnType, value: Any) -> Any:
    return None if value is None else codec_of(kind).to_frame(value)


def cell_from_frame(kind: ColumnType, value: Any) -> Any:
    return None if is_missing(value) else codec_of(kind).from_frame(value)


def rows_to_frame(table: Table, rows: Sequence[Row]) -> pd.DataFrame:
    from storage.csv.frames import as_frame

    data = {
        c.name: pd.Series(
            [cell_to_frame(c.type, row.get(c.name)) for row in rows],
            dtype=codec_of(c.type).frame_dtype,
        )
        for c in table.all_columns
    }  # built with the final dtype: going through float64 would round ints above 2**53
    return as_frame(table, pd.DataFrame(data))


def frame_to_rows(table: Table, frame: pd.DataFrame) -> list[Row]:
    kinds = {column.name: column.type for column in table.all_columns}
    names = [name for name in frame.columns if name in kinds]
    records = frame[names].astype(object).to_dict("records")
    return [
        {name: cell_from_frame(kinds[name], record[name]) for name in names} for record in records
    ]


def filter_frame(
    table: Table,
    frame: pd.DataFrame,
    filters: Mapping[str, Any] | None,
    since: str | None,
    changed_after: str | None,
    before: str | None = None,
) -> pd.DataFrame:
    """Equality filters (a list: any of its values), `since` (on/after) and `before`
    (strictly before) on the table's partition column, `updatedAt` after a stamp."""
    for name, value in (filters or {}).items():
        kind = table.column(name).type
        if isinstance(value, list | tuple | set | frozenset):  # any of these values
            frame = frame[frame[name].isin([cell_to_frame(kind, v) for v in value])]
        else:
            frame = frame[frame[name] == cell_to_frame(kind, value)]
    for bound, keep in ((since, lambda text: text >= since), (before, lambda text: text < before)):
        if bound is None:
            continue
        if table.partition is None:
            raise ValueError(f"{table.name} has no date column to bound")
        frame = frame[keep(frame[table.partition].fillna("").astype(str))]
    if changed_after is not None:
        frame = frame[frame["updatedAt"].fillna("").astype(str) > changed_after]
    return frame


def modified_after(path: Path, stamp: str) -> bool:
    """Whether the file may hold rows written after `stamp` (its mtime, with some slack)."""
    try:
        modified = os.stat(path).st_mtime
    except FileNotFoundError:
        return False
    return modified >= parse_datetime(stamp).timestamp() - MTIME_SLACK_SECONDS
