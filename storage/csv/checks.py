"""What a CSV read refuses beyond what pandas parses: cells no write could have stored (a hand
edit, a damaged file). Each is a CORRUPT error naming the file, column and row, not a
ValueError from whichever reader meets the cell first."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from storage.errors import CorruptFile
from storage.tables import Column, ColumnType
from storage.values import parse_datetime


def check_cells(frame: pd.DataFrame, path: Path, columns: list[Column]) -> None:
    """`columns`: the table's columns present in the file, cells already decoded."""
    for column in columns:
        series = frame[column.name]
        if column.required:
            _check_required(series, path, column)
        if column.type in _STAMP_FORMATS:
            _check_stamps(series, path, column)
        elif column.type is ColumnType.JSON:
            _check_json(series, path, column)
        if column.timezone:
            _check_timezones(series, path, column)


def bad_cell(path: Path, column: Column, row: int | None, value: object, what: str) -> CorruptFile:
    where = "" if row is None else f" of data row {row + 1}"
    return CorruptFile(
        f"{path}: column {column.name}{where} holds {value!r}, not {what}",
        path=str(path),
        field=column.name,
    )


_STAMP_FORMATS = {
    ColumnType.DATE: ("%Y-%m-%d", "a date (YYYY-MM-DD)"),
    ColumnType.DATETIME: ("ISO8601", "an ISO-8601 timestamp"),
}


def _check_stamps(series: pd.Series, path: Path, column: Column) -> None:
    """Every date or timestamp cell parses (a hand edit can leave '2026-03-'): a CORRUPT error
    naming the cell, not a ValueError from whichever reader meets it first."""
    pattern, what = _STAMP_FORMATS[column.type]
    present = series.notna()
    parsed = pd.to_datetime(series.where(present), utc=True, format=pattern, errors="coerce")
    for row in np.flatnonzero((present & parsed.isna()).to_numpy()):
        text = series.iloc[row]
        if _python_reads(text, column.type):  # beyond pandas 2's years 1677-2262, say
            continue
        raise bad_cell(path, column, int(row), text, what)


def _python_reads(text: str, kind: ColumnType) -> bool:
    try:
        date.fromisoformat(text) if kind is ColumnType.DATE else parse_datetime(text)
    except ValueError:
        return False
    return True


def _check_json(series: pd.Series, path: Path, column: Column) -> None:
    for row, text in enumerate(series.to_numpy(dtype=object)):
        if text is None:
            continue
        try:
            json.loads(text)
        except ValueError:
            raise bad_cell(path, column, row, text[:80], "JSON") from None


def _check_timezones(series: pd.Series, path: Path, column: Column) -> None:
    """Every timezone cell names a zone: the metrics convert with it."""
    for zone in series.dropna().unique():
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise bad_cell(path, column, None, zone, "an IANA timezone") from None


def _check_required(series: pd.Series, path: Path, column: Column) -> None:
    """Every write checks it, so a gap is a damaged file (the metrics would meet a NaT date)."""
    empty = series.isna().to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise CorruptFile(
            f"{path}: data row {row + 1} has no {column.name}, which every row must have",
            path=str(path),
            field=column.name,
        )
