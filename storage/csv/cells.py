"""Typed values -> CSV text, the writing half of the codec (codec.py reads it back): missing
is an empty field, the empty string a lone backslash, a leading backslash doubled. A text
a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) is
written with a leading single quote, as OWASP advises for CSV files people open; so is a text
that starts with a quote followed by one of those (or another quote), so that reading takes
exactly one quote off and every text comes back as it was."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from storage.codecs import codec_of
from storage.codecs.structured import datetime_text as datetime_text
from storage.codecs.structured import json_text as json_text
from storage.tables import Column, ColumnType, Table
from storage.textscan import any_empty, any_starts_with, joined

FORMULA_STARTS = frozenset("=+-@\t\r")  # what makes a spreadsheet read a cell as a formula
QUOTED_STARTS = FORMULA_STARTS | {"'"}  # after a leading quote: the quote was added on write
# a text starting with one of these may need an escape (so does the empty text)
ESCAPED_STARTS = "\\'" + "".join(sorted(FORMULA_STARTS))


def _encode_one(value: Any) -> str:
    if value is None or value is pd.NA or value != value:  # None, NA or NaN: missing
        return ""
    text = str(value)
    if text == "" or text[0] == "\\":
        return "\\" + text
    if text[0] in FORMULA_STARTS or (text[0] == "'" and text[1:2] in QUOTED_STARTS and text[1:]):
        return "'" + text
    return text


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
    cells = codec_of(kind).csv_cells(series)
    return cells if cells is not None else _text_cells(series.to_numpy(dtype=object))


def _text_cells(values: np.ndarray) -> list[str]:
    """Text cells: one C-level pass over the joined values decides whether any needs an
    escape (empty, leading backslash) or quotes; most columns need neither."""
    missing = pd.isna(values)
    present = values[~missing] if missing.any() else values
    if pd.api.types.infer_dtype(present, skipna=False) in ("string", "empty"):
        text = joined(present)
        plain = not (
            any_empty(text, len(present))
            or any_starts_with(text, ESCAPED_STARTS)
            or any(mark in text for mark in _NEEDS_QUOTES)
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
    field = codec_of(kind).csv_cell(value)
    return field if field is not None else _quoted([_encode_one(value)])[0]
