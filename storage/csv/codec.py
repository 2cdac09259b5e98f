"""Typed DataFrame <-> CSV text. Strings round-trip exactly: missing is an empty field, the empty
string is a lone backslash, and a value starting with a backslash gets one more."""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storage.errors import CorruptFile
from storage.tables import Column, ColumnType, Table

TEXT_TYPES = (ColumnType.STRING, ColumnType.JSON, ColumnType.DATE, ColumnType.DATETIME)
# pandas 3 parses floats exactly by default and deprecates the option; pandas 2 needs it.
_ROUND_TRIP: dict[str, Any] = (
    {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
)
_DTYPES = {ColumnType.INT: "Int64", ColumnType.FLOAT: "float64", ColumnType.BOOL: "boolean"}


def frame_dtype(column: Column) -> str:
    return _DTYPES.get(column.type, "object")


def empty_frame(table: Table, extra: Sequence[str] = ()) -> pd.DataFrame:
    """No rows, the table's columns and dtypes (built once per table: it is asked often)."""
    return _empty_frame(table, tuple(extra)).copy()


@functools.lru_cache(maxsize=128)
def _empty_frame(table: Table, extra: tuple[str, ...]) -> pd.DataFrame:
    data = {c.name: pd.Series([], dtype=frame_dtype(c)) for c in table.all_columns}
    data.update({name: pd.Series([], dtype="object") for name in extra})
    return pd.DataFrame(data)


def _encode_one(value: Any) -> str:
    if value is None or value is pd.NA or value != value:  # None, NA or NaN: missing
        return ""
    text = str(value)
    return "\\" + text if text == "" or text[0] == "\\" else text


def _decode_one(text: Any) -> str | None:
    if not isinstance(text, str) or text == "":
        return None
    return text[1:] if text[0] == "\\" else text


def _starts_with_backslash(values: np.ndarray) -> list[bool]:
    """Whether any value starts with a backslash: one C-level search of the joined text."""
    if len(values) == 0:
        return [False]
    joined = "\x00".join(values)
    return [joined.startswith("\\") or "\x00\\" in joined]


def decode_text(series: pd.Series) -> pd.Series:
    text = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(text, skipna=False) == "string" and not any(
        _starts_with_backslash(text)
    ):
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


def header_names(raw: bytes) -> list[str]:
    """Column names of the first line (a header never spans lines: names hold no newline)."""
    first = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    names = next(csv.reader([first]))
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"header {first[:120]!r} repeats or leaves out a column name")
    return names


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
        text = path.read_bytes().decode("utf-8")
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
    if whole_lines and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
    if not raw.strip():
        return empty_frame(table)
    try:
        header = header_names(raw)
        known = {c.name: c for c in table.all_columns}
        dtypes = {
            n: (
                "object"
                if n not in known or known[n].type in TEXT_TYPES or known[n].type is ColumnType.BOOL
                else frame_dtype(known[n])
            )
            for n in header
        }
        na = {n: [""] for n in header if dtypes[n] != "object"}
        frame = pd.read_csv(
            io.BytesIO(raw),
            dtype=dtypes,
            keep_default_na=False,
            na_values=na,
            encoding="utf-8",
            **_ROUND_TRIP,
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        detail = str(error).splitlines()[0][:200]
        raise CorruptFile(
            f"{path} is not a valid {table.name} CSV: {detail}", path=str(path), table=table.name
        ) from None
    for name in header:
        column = known.get(name)
        if column is not None and column.type is ColumnType.BOOL:
            frame[name] = _bool_from_text(frame[name], path, name)
        elif dtypes[name] == "object":
            frame[name] = decode_text(frame[name])
    if not add_missing:
        return frame
    for column in table.all_columns:
        if column.name not in frame.columns:
            frame[column.name] = pd.Series([None] * len(frame), dtype=frame_dtype(column))
    ordered = table.headers + [n for n in header if n not in known]
    return frame[ordered]


def write_csv_text(frame: pd.DataFrame, table: Table, handle: Any) -> None:
    """Write the frame as CSV to an open binary handle: every column turned into text once,
    then rows joined in chunks (pandas' to_csv formats cell by cell and is 2-3x slower)."""
    handle.write(csv_header(frame))
    for _start, lines in csv_lines(frame, table):
        handle.write(("\n".join(lines) + "\n").encode("utf-8"))


def csv_header(frame: pd.DataFrame) -> bytes:
    return (",".join(_quoted(list(map(str, frame.columns)))) + "\n").encode("utf-8")


def csv_lines(frame: pd.DataFrame, table: Table) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, its chunk's CSV lines as an object array), WRITE_CHUNK_ROWS rows at a time
    so memory stays bounded whatever the frame's size."""
    known = {c.name: c for c in table.all_columns}
    for start in range(0, len(frame), WRITE_CHUNK_ROWS):
        part = frame.iloc[start : start + WRITE_CHUNK_ROWS]
        cells = [_cells(part[name], known.get(str(name))) for name in frame.columns]
        lines = np.empty(len(part), dtype=object)
        lines[:] = list(map(",".join, zip(*cells, strict=True)))
        yield start, lines


WRITE_CHUNK_ROWS = 100_000
_NEEDS_QUOTES = (",", '"', "\n", "\r")


def _cells(series: pd.Series, column: Column | None) -> list[str]:
    """One column as CSV cells: missing is an empty field; text is escaped and quoted."""
    kind = column.type if column is not None else ColumnType.STRING
    if kind is ColumnType.FLOAT:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return _formatted(values, np.isnan(values), repr)
    if kind is ColumnType.INT:
        missing = series.isna().to_numpy()
        numbers = series.astype("Int64").to_numpy(dtype="int64", na_value=0)
        return _formatted(numbers, missing, str)
    if kind is ColumnType.BOOL:
        flags = series.astype("boolean")
        words = flags.map({True: "true", False: "false"}).astype(object)
        return words.where(flags.notna(), "").tolist()  # type: ignore[no-any-return]
    return _text_cells(series.to_numpy(dtype=object))


def _formatted(values: np.ndarray, missing: np.ndarray, form: Any) -> list[str]:
    """`form` applied to the present values only; missing ones are empty fields."""
    if not missing.any():
        return list(map(form, values.tolist()))
    out = np.full(len(values), "", dtype=object)
    present = ~missing
    if present.any():
        out[present] = list(map(form, values[present].tolist()))
    return out.tolist()  # type: ignore[no-any-return]


def _text_cells(values: np.ndarray) -> list[str]:
    """Text cells: one C-level pass over the joined values decides whether any needs an
    escape (empty, leading backslash) or quotes; most columns need neither."""
    missing = pd.isna(values)
    present = values[~missing] if missing.any() else values
    if pd.api.types.infer_dtype(present, skipna=False) in ("string", "empty"):
        joined = "\x00".join(present)
        plain = not (
            joined.startswith("\\")
            or "\x00\\" in joined
            or "\x00\x00" in joined
            or (len(present) > 0 and (present[0] == "" or present[-1] == ""))
            or any(mark in joined for mark in _NEEDS_QUOTES)
        )
        if plain:
            if not missing.any():
                return values.tolist()  # type: ignore[no-any-return]
            out = values.copy()
            out[missing] = ""
            return out.tolist()  # type: ignore[no-any-return]
    return _quoted([_encode_one(value) for value in values.tolist()])


def _quoted(cells: list[str]) -> list[str]:
    """Quote the cells holding a separator, quote or line break (checked in one C-level pass)."""
    joined = "\x00".join(cells)
    if not any(mark in joined for mark in _NEEDS_QUOTES):
        return cells
    return [
        '"' + cell.replace('"', '""') + '"' if any(m in cell for m in _NEEDS_QUOTES) else cell
        for cell in cells
    ]


def record_line(record: dict[str, Any], header: Sequence[str], table: Table) -> str:
    """One row (frame form: dates and JSON already text) as a CSV line in `header` order,
    formatted exactly as `write_csv_text` formats a column."""
    known = {c.name: c.type for c in table.all_columns}
    return ",".join(_cell(known.get(name, ColumnType.STRING), record.get(name)) for name in header)


def _cell(kind: ColumnType, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if kind is ColumnType.FLOAT:
        return repr(float(value))
    if kind is ColumnType.INT:
        return str(int(value))
    if kind is ColumnType.BOOL:
        return "true" if value else "false"
    return _quoted([_encode_one(value)])[0]


def json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def datetime_text(values: pd.Series) -> pd.Series:
    """UTC timestamps -> canonical ISO text: seconds always, microseconds only when set."""
    stamps = pd.to_datetime(values, utc=True)
    array = stamps.to_numpy(dtype="datetime64[us]")
    text = np.datetime_as_string(array, unit="s", timezone="UTC")  # "...:SSZ"
    has_fraction = (stamps.dt.microsecond != 0).to_numpy()
    if has_fraction.any():
        fine = np.datetime_as_string(array, unit="us", timezone="UTC")
        text = np.where(has_fraction, fine, text)
    result = pd.Series(text.astype(object), index=values.index, dtype=object)
    return result.where(stamps.notna().to_numpy(), None)
