"""Canonical rows <-> frame form (dates, timestamps and JSON as text; ints nullable)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from storage.csv.cells import json_text
from storage.csv.codec import frame_dtype
from storage.tables import ColumnType, Table
from storage.values import Row, parse_datetime

MTIME_SLACK_SECONDS = 2.0  # coarse file-system timestamps (some keep 1-2 s resolution)


def datetime_to_text(value: datetime) -> str:
    utc = parse_datetime(value).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def cell_to_frame(kind: ColumnType, value: Any) -> Any:
    if value is None:
        return None
    if kind is ColumnType.DATE and isinstance(value, date):
        return value.isoformat()
    if kind is ColumnType.DATETIME and isinstance(value, datetime):
        return datetime_to_text(value)
    if kind is ColumnType.JSON:
        return json_text(value)
    return value


def cell_from_frame(kind: ColumnType, value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind in (ColumnType.DATE, ColumnType.DATETIME):
        try:
            return date.fromisoformat(value) if kind is ColumnType.DATE else parse_datetime(value)
        except ValueError:  # a hand-edited '2026-3-1' or '12:5:00', which pandas read (codec)
            stamp = pd.Timestamp(value)
            if kind is ColumnType.DATE:
                return stamp.date()
            return parse_datetime(stamp.to_pydatetime())
    if kind is ColumnType.JSON:
        return json.loads(value)
    if kind is ColumnType.INT:
        return int(value)
    if kind is ColumnType.FLOAT:
        return float(value)
    if kind is ColumnType.BOOL:
        return bool(value)
    return value


def rows_to_frame(table: Table, rows: Sequence[Row]) -> pd.DataFrame:
    from storage.csv.frames import as_frame

    data = {
        c.name: pd.Series(
            [cell_to_frame(c.type, row.get(c.name)) for row in rows], dtype=frame_dtype(c)
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
