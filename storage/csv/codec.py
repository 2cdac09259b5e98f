"""CSV text -> typed DataFrames, the reading half of the codec (cells.py writes). Strings
round-trip exactly: missing is an empty field, the empty string is a lone backslash, a value
starting with a backslash gets one more, and one a spreadsheet would run as a formula a
leading quote (see cells.py)."""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storage.codecs import codec_of
from storage.csv.cells import QUOTED_STARTS
from storage.csv.checks import check_cells
from storage.errors import CorruptFile
from storage.tables import Column, ColumnType, Table
from storage.textscan import any_starts_with, joined

# pandas 3 parses floats exactly by default and deprecates the option; pandas 2 needs it.
_ROUND_TRIP: dict[str, Any] = (
    {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
)
BOM = codecs.BOM_UTF8  # spreadsheets start a UTF-8 CSV with it; it is not part of a name


def frame_dtype(column: Column) -> str:
    return codec_of(column.type).frame_dtype


def empty_frame(table: Table, extra: Sequence[str] = ()) -> pd.DataFrame:
    """No rows, the table's columns and dtypes (built once per table: it is asked often)."""
    return _empty_frame(table, tuple(extra)).copy()


@functools.lru_cache(maxsize=128)
def _empty_frame(table: Table, extra: tuple[str, ...]) -> pd.DataFrame:
    data = {c.name: pd.Series([], dtype=frame_dtype(c)) for c in table.all_columns}
    data.update({name: pd.Series([], dtype="object") for name in extra})
    return pd.DataFrame(data)


def _decode_one(text: Any) -> str | None:
    if not isinstance(text, str) or text == "":
        return None
    if text[0] == "\\" or (text[0] == "'" and text[1:2] in QUOTED_STARTS and text[1:]):
        return text[1:]
    return text


def _any_escaped(values: np.ndarray) -> bool:
    """Whether any value may carry an escape (starts with a backslash or a quote)."""
    return len(values) > 0 and any_starts_with(joined(values), "\\'")


def decode_text(series: pd.Series) -> pd.Series:
    text = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(text, skipna=False) == "string" and not _any_escaped(text):
        return pd.Series(np.where(text == "", None, text), index=series.index, dtype=object)
    values = [_decode_one(v) for v in series.to_numpy(dtype=object)]
    return pd.Series(values, index=series.index, dtype=object)


def _bool_from_text(series: pd.Series, path: Path, name: str) -> pd.Series:
    lowered = series.astype(object).where(series.notna(), "").astype(str).str.lower()
    bad = ~lowered.isin(["true", "false", ""])
    if bad.any():
        raise CorruptFile(
            f"{path}: column {name} holds {series[bad].iloc[0]!r}, not true/false",
            path=str(path),
            field=name,
        )
    return lowered.map({"true": True, "false": False, "": pd.NA}).astype("boolean")


def header_names(raw: bytes, path: Path, table: Table) -> list[str]:
    """Column names of the first line (a header never spans lines: names hold no newline)."""
    try:
        first = raw.removeprefix(BOM).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
        names = next(csv.reader([first]))
    except (UnicodeDecodeError, csv.Error) as error:
        raise corrupt(path, table, str(error)) from None
    if len(set(names)) != len(names) or not all(names):
        raise corrupt(path, table, f"header {first[:120]!r} repeats or leaves out a column name")
    return names


def _check_unique_keys(frame: pd.DataFrame, path: Path, table: Table) -> None:
    """A key twice in one file (a row pasted in by hand) would count twice in the metrics
    and later fail every write of that file in pandas: CORRUPT naming the row and key."""
    if len(frame) < 2 or not all(name in frame for name in table.key):
        return
    repeated = frame.duplicated(subset=list(table.key)).to_numpy()
    if repeated.any():
        row = int(repeated.argmax())
        key = "/".join(str(frame[name].iloc[row]) for name in table.key)[:120]
        raise corrupt(path, table, f"data row {row + 1} repeats the key {key} of an earlier row")


def _misshapen_row(raw: bytes, fields: int) -> str:
    """Which data row has more fields than the header (an unquoted comma, say)."""
    rows = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace")))
    for number, row in enumerate(rows):
        if number and len(row) > fields:
            return f"data row {number} has {len(row)} fields, its header {fields}"
    return f"a data row has more fields than its header's {fields}"


def corrupt(path: Path, table: Table, detail: str) -> CorruptFile:
    return CorruptFile(
        f"{path} is not a valid {table.name} CSV: {detail}", path=str(path), table=table.name
    )


def read_keys(path: Path, table: Table) -> pd.Index:
    """The key values of one file without parsing the other columns: for a one-column key
    written first (the usual layout), the text before the first comma of each line."""
    frame_or_lines = _key_lines(path, table)
    if isinstance(frame_or_lines, pd.DataFrame):
        columns = [frame_or_lines[name] for name in table.key]
        if len(columns) == 1:
            return pd.Index(columns[0].to_numpy(dtype=object), dtype=object)
        return pd.MultiIndex.from_arrays(columns)
    raw = pd.Series(frame_or_lines, dtype=object)
    return pd.Index(decode_text(raw).to_numpy(dtype=object), dtype=object)


def _key_lines(path: Path, table: Table) -> pd.DataFrame | list[str]:
    try:
        text = path.read_bytes().removeprefix(BOM).decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError:
        return read_frame(path, table, whole_lines=True)  # raises the usual CorruptFile
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a killed appender's partial row
    simple = (
        len(table.key) == 1
        and bool(lines)
        and lines[0].split(",", 1)[0] == table.key[0]
        and '"' not in text
        and "\r" not in text
    )
    if not simple:
        return read_frame(path, table, whole_lines=True)
    return [line.split(",", 1)[0] for line in lines[1:] if line]


def read_frame(
    path: Path, table: Table, *, add_missing: bool = True, whole_lines: bool = False
) -> pd.DataFrame:
    """Parse one CSV file into typed columns, adding any definition column the file lacks.
    `whole_lines`: the file is only ever appended to in whole lines (a month of a partitioned
    table), so text after the last newline is a killed appender's unacknowledged row."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return empty_frame(table)
    return parse_frame(raw, path, table, add_missing=add_missing, whole_lines=whole_lines)


def parse_frame(
    raw: bytes, path: Path, table: Table, *, add_missing: bool = True, whole_lines: bool = False
) -> pd.DataFrame:
    """`read_frame` of bytes already read from `path` (named in errors)."""
    raw = raw.removeprefix(BOM)  # a file saved by a spreadsheet
    if whole_lines and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
    if not raw.strip():
        return empty_frame(table)
    try:
        header = header_names(raw, path, table)
        known = {c.name: c for c in table.all_columns}
        dtypes = {
            n: (
                "object"
                if n not in known or codec_of(known[n].type).csv_as_text
                else frame_dtype(known[n])
            )
            for n in header
        }
        na = {n: [""] for n in header if dtypes[n] != "object"}
        with warnings.catch_warnings():
            # a first row with a field too many would become an index (index_col=False) or
            # lose its last field (the warning): both shift a row's values silently
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(raw),
                dtype=dtypes,
                keep_default_na=False,
                na_values=na,
                encoding="utf-8",
                index_col=False,
                **_ROUND_TRIP,
            )
    except pd.errors.ParserWarning:
        raise corrupt(path, table, _misshapen_row(raw, len(header))) from None
    # TypeError: "1.5" in a whole-number column; OverflowError: a number beyond 64 bits
    except (ValueError, TypeError, OverflowError, csv.Error) as error:
        detail = str(error).splitlines()[0]
        if table.secret and re.search("['\"]", detail):  # pandas quotes the cell: a token?
            detail = re.split("['\"]", detail)[0] + "… (this table's values are not shown)"
        raise corrupt(path, table, detail[:200]) from None
    missing_key = [name for name in table.key if name not in header]
    if missing_key and len(frame):  # rows without their key: a damaged header, not old data
        raise corrupt(
            path,
            table,
            f"its header {header[:12]} has no {', '.join(missing_key)} column (the table's key)",
        )
    for name in header:
        column = known.get(name)
        if column is not None and column.type is ColumnType.BOOL:
            frame[name] = _bool_from_text(frame[name], path, name)
        elif dtypes[name] == "object":
            frame[name] = decode_text(frame[name])
    check_cells(frame, path, table, [known[name] for name in header if name in known])
    _check_unique_keys(frame, path, table)
    if not add_missing:
        return frame
    for column in table.all_columns:
        if column.name not in frame.columns:
            frame[column.name] = pd.Series([None] * len(frame), dtype=frame_dtype(column))
    ordered = table.headers + [n for n in header if n not in known]
    return frame[ordered]
