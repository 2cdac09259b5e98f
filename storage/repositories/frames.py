"""Canonical rows <-> frame form (dates, timestamps and JSON as text; ints nullable)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd

from storage.csv.codec import frame_dtype, json_text
from storage.tables import ColumnType, Table
from storage.values import Row, parse_datetime


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
    if kind is ColumnType.DATE:
        return date.fromisoformat(value)
    if kind is ColumnType.DATETIME:
        return parse_datetime(value)
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
    from storage.csv.storage import as_frame

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
