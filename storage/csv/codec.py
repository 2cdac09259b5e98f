"""Typed DataFrame <-> CSV text. Strings round-trip exactly: missing is an empty field, the empty
string is a lone backslash, and a value starting with a backslash gets one more."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
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


def _any_escape_needed(values: np.ndarray) -> bool:
    """An empty string or a leading backslash anywhere (str values only, no missing)."""
    if len(values) == 0:
        return False
    joined = "\x00".join(values)
    return (
        any(_starts_with_backslash(values))
        or values[0] == ""
        or values[-1] == ""
        or "\x00\x00" in joined
    )


def encode_text(series: pd.Series) -> pd.Series:
    """Object column of str/None -> CSV-safe text."""
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        text = series.astype(object)
        if not _any_escape_needed(text.dropna().to_numpy()):
            return text  # missing values are written as empty fields by to_csv
    values = [_encode_one(v) for v in series.to_numpy(dtype=object)]
    return pd.Series(values, index=series.index, dtype=object)


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


def read_frame(path: Path, table: Table, *, add_missing: bool = True) -> pd.DataFrame:
    """Parse one CSV file into typed columns, adding any definition column the file lacks."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return empty_frame(table)
    if not raw.strip():
        return empty_frame(table)
    try:
        header = pd.read_csv(io.BytesIO(raw), nrows=0).columns.tolist()
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
    """Write the frame as CSV to an open binary handle."""
    out = pd.DataFrame(index=frame.index)
    known = {c.name: c for c in table.all_columns}
    for name in frame.columns:
        column = known.get(name)
        series = frame[name]
        if column is None or column.type in TEXT_TYPES:
            out[name] = encode_text(series)
        elif column.type is ColumnType.BOOL:
            out[name] = series.astype("boolean").map({True: "true", False: "false"}).astype(object)
        else:
            out[name] = series
    out.to_csv(handle, index=False, lineterminator="\n", encoding="utf-8")


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
