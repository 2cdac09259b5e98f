"""Monthly partitions of a large table: `<table>/<YYYY-MM>.csv`, one file per month of the
table's partition column, so a write rewrites only the months it changes and a reader of recent
days reads only recent months. A table without a partition column is one file, part ""."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from storage.tables import Table

WHOLE = ""  # the one part of an unpartitioned table
UNDATED = "undated"  # rows whose partition column is empty (never for required columns)
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def is_partitioned(table: Table) -> bool:
    return table.partition is not None


def key_decides_part(table: Table) -> bool:
    """True when the partition column is part of the key: a key can then never change part."""
    return table.partition is not None and table.partition in table.key


def part_ids(table: Table, frame: pd.DataFrame) -> np.ndarray:
    """The part each row belongs to: the YYYY-MM of its partition column (text in frame form)."""
    if table.partition is None:
        return np.full(len(frame), WHOLE, dtype=object)
    codes, names = _month_codes(frame[table.partition])
    return np.asarray(names, dtype=object)[codes] if len(frame) else np.array([], dtype=object)


def _month_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Per row, an index into the list of distinct part names. The first 7 characters are
    packed into one integer per row in C-level numpy (a per-row Python slice costs ~10x
    more); only the distinct prefixes are checked as text."""
    chars = np.array(column.to_numpy(dtype=object), dtype="U7").view(np.uint32)
    chars = chars.reshape(len(column), 7)
    if (chars >= 128).any():  # not ASCII: no month anyway, but keep the packing exact
        prefixes = column.astype(object).where(column.notna(), "").astype(str).str.slice(0, 7)
        codes, uniques = pd.factorize(prefixes.to_numpy(dtype=object))
        return _merged(codes, [month_part(u) for u in uniques.tolist()])
    packed = np.zeros(len(column), dtype=np.int64)
    for position in range(7):
        packed = packed * 128 + chars[:, position]
    codes, uniques = pd.factorize(packed)
    return _merged(codes, [month_part(_unpack(int(u))) for u in uniques.tolist()])


def _merged(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes of prefixes that name the same part (every non-month is UNDATED) made one."""
    name_codes, distinct = pd.factorize(np.asarray(names, dtype=object))
    return name_codes[codes], [str(name) for name in distinct]


def _unpack(packed: int) -> str:
    letters = []
    for _ in range(7):
        packed, letter = divmod(packed, 128)
        letters.append(chr(letter))
    return "".join(reversed(letters)).rstrip("\x00")


def month_part(day: str) -> str:
    """The part holding an ISO date or timestamp."""
    month = str(day)[:7]
    return month if _MONTH.match(month) else UNDATED


def row_parts(table: Table, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Per row, an index into the list of part names (one name, WHOLE, when unpartitioned)."""
    if table.partition is None or frame.empty:
        return np.zeros(len(frame), dtype=np.int64), [WHOLE]
    return _month_codes(frame[table.partition])


def split_parts(table: Table, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if table.partition is None:
        return {WHOLE: frame}
    if frame.empty:
        return {}
    codes, names = _month_codes(frame[table.partition])
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return {
        names[int(codes[rows[0]])]: frame.iloc[np.sort(rows)] for rows in np.split(order, bounds)
    }


def part_name_ok(name: str) -> bool:
    return bool(_MONTH.match(name)) or name == UNDATED
