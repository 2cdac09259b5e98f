"""What a CSV read refuses beyond what pandas parses: cells no write could have stored (a hand
edit, a damaged file). Each is a CORRUPT error naming the file, column and row, not a
ValueError from whichever reader meets the cell first."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from storage.errors import CorruptFile
from storage.limits import REQUIRED, Refuse, check_column, hides_values
from storage.tables import Column, ColumnType, Table
from storage.values import parse_datetime, shown


def check_cells(frame: pd.DataFrame, path: Path, table: Table, columns: list[Column]) -> None:
    """`columns`: the table's columns present in the file, cells already decoded: each parses
    as its type, then keeps the limits every write keeps (storage/limits.py)."""
    for column in columns:
        series = frame[column.name]
        if column.type in _STAMP_FORMATS:
            _check_stamps(series, path, table, column)
        elif column.type is ColumnType.JSON:
            _check_json(series, path, table, column)
        check_column(table, column, series, _refuse_in(path, table, series))


def _refuse_in(path: Path, table: Table, series: pd.Series) -> Refuse:
    def refuse(bad: np.ndarray, column: Column, why: str) -> None:
        if not bad.any():
            return
        row = int(np.flatnonzero(bad)[0])
        value = series.iloc[row]
        held = "a secret value" if hides_values(table, column) else shown(value)
        problem = f"{table.name}.{column.name} of data row {row + 1} {why} (it holds {held})"
        if why == REQUIRED:
            problem = f"data row {row + 1} has no {column.name}, which every row must have"
        raise CorruptFile(
            f"{path}: {problem}",
            path=str(path),
            table=table.name,
            field=column.name,
        )

    return refuse


def bad_cell(
    path: Path, table: Table, column: Column, row: int | None, value: object, what: str
) -> CorruptFile:
    where = "" if row is None else f" of data row {row + 1}"
    held = "a secret value" if hides_values(table, column) else repr(value)
    return CorruptFile(
        f"{path}: column {column.name}{where} holds {held}, not {what}",
        path=str(path),
        field=column.name,
    )


_STAMP_FORMATS = {
    ColumnType.DATE: ("%Y-%m-%d", "a date (YYYY-MM-DD)"),
    ColumnType.DATETIME: ("ISO8601", "an ISO-8601 timestamp"),
}


def _check_stamps(series: pd.Series, path: Path, table: Table, column: Column) -> None:
    """Every date or timestamp cell parses (a hand edit can leave '2026-03-'): a CORRUPT error
    naming the cell, not a ValueError from whichever reader meets it first."""
    pattern, what = _STAMP_FORMATS[column.type]
    present = series.notna()
    parsed = pd.to_datetime(series.where(present), utc=True, format=pattern, errors="coerce")
    for row in np.flatnonzero((present & parsed.isna()).to_numpy()):
        text = series.iloc[row]
        if _python_reads(text, column.type):  # beyond pandas 2's years 1677-2262, say
            continue
        raise bad_cell(path, table, column, int(row), text, what)


def _python_reads(text: str, kind: ColumnType) -> bool:
    try:
        date.fromisoformat(text) if kind is ColumnType.DATE else parse_datetime(text)
    except ValueError:
        return False
    return True


def _check_json(series: pd.Series, path: Path, table: Table, column: Column) -> None:
    for row, text in enumerate(series.to_numpy(dtype=object)):
        if text is None:
            continue
        try:
            json.loads(text)
        except ValueError:
            raise bad_cell(path, table, column, row, text[:80], "JSON") from None
