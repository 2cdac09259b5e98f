"""Validation and coercion of row values to their canonical Python form, per column type."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from storage.codecs import codec_of
from storage.codecs.structured import parse_date as parse_date
from storage.codecs.structured import parse_datetime as parse_datetime
from storage.errors import ValidationError
from storage.json_values import check_json_value, scalar_problem
from storage.json_values import check_nesting as check_nesting
from storage.limits import (
    BROKEN_TEXT,
    MAX_STRING,
    NUL_TEXT,
    OUTSIDE_YEARS,
    YEARS,
    hides_values,
)
from storage.tables import BOOKKEEPING, Column, ColumnType, Table
from storage.zones import is_time_zone

Row = dict[str, Any]


def in_years(year: int) -> bool:
    """Whether a date in `year` is plausible (rows and session payloads; frames check YEARS
    vectorised)."""
    return YEARS[0] <= year <= YEARS[1]


def shown(value: Any) -> str:
    """A bad value as an error message shows it: plain Python (1, not np.int64(1)), short."""
    value = value.item() if isinstance(value, np.generic) else value
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _fail(table: Table, column: Column, value: Any, why: str) -> ValidationError:
    got = "a secret value, not shown" if hides_values(table, column) else shown(value)
    return ValidationError(
        f"{table.name}.{column.name}: {why} (got {got})",
        table=table.name,
        field=column.name,
    )


def coerce_value(table: Table, column: Column, value: Any) -> Any:
    """Return the canonical value of one cell or raise a VALIDATION error naming the field."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if column.required:
            raise _fail(table, column, value, "is required")
        return None
    kind = column.type
    try:
        result = codec_of(kind).coerce(value)
        if kind is ColumnType.STRING:
            _check_text(table, column, result)
        elif kind is ColumnType.JSON:
            try:
                check_json_value(result, "it")
            except ValidationError as error:
                raise _fail(table, column, value, error.message.removeprefix("it ")) from None
    except ValidationError:
        raise
    except (TypeError, ValueError, OverflowError) as error:
        why = "" if hides_values(table, column) else f" ({error})"  # it may quote the value
        raise _fail(table, column, value, f"is not a valid {kind}{why}") from None
    _check_range(table, column, result)
    return result


def _check_text(table: Table, column: Column, value: str) -> None:
    """The limits every stored text keeps (storage/limits.py checks the same in bulk)."""
    if len(value) > MAX_STRING:
        raise _fail(table, column, value, f"is longer than {MAX_STRING:,} characters")
    if "\x00" in value:
        raise _fail(table, column, value, NUL_TEXT)
    if scalar_problem(value):
        raise _fail(table, column, value, BROKEN_TEXT)
    if column.required and not value.strip():
        raise _fail(table, column, value, "must not be empty")


def _check_range(table: Table, column: Column, value: Any) -> None:
    if column.choices is not None and value not in column.choices:
        raise _fail(table, column, value, f"must be one of {', '.join(column.choices)}")
    if column.minimum is not None and value < column.minimum:
        raise _fail(table, column, value, f"must be at least {column.minimum:g}")
    if column.maximum is not None and value > column.maximum:
        raise _fail(table, column, value, f"must be at most {column.maximum:g}")
    if column.type in (ColumnType.DATE, ColumnType.DATETIME) and not in_years(value.year):
        raise _fail(table, column, value, OUTSIDE_YEARS)
    if column.timezone and not is_time_zone(value):
        raise _fail(table, column, value, "is not an IANA timezone")


def validate_row(table: Table, row: Mapping[str, Any], *, partial: bool = False) -> Row:
    """Coerce a row to canonical values. Unknown fields are refused; bookkeeping is ignored."""
    if not isinstance(row, Mapping):
        raise ValidationError(
            f"{table.name}: a row must be an object, got {type(row).__name__}", table=table.name
        )
    known = {column.name for column in table.columns}
    unknown = sorted(set(row) - known - set(BOOKKEEPING))
    if unknown:
        raise ValidationError(
            f"{table.name}: unknown field {unknown[0]!r}", table=table.name, field=str(unknown[0])
        )
    clean: Row = {}
    for column in table.columns:
        if column.name in row:
            clean[column.name] = coerce_value(table, column, row[column.name])
        elif not partial:
            clean[column.name] = coerce_value(table, column, None)
    return clean


def key_of(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in table.key)


def normalize_key(table: Table, key: Any) -> tuple[Any, ...]:
    """Accept a scalar for one-column keys, a tuple, or a mapping; coerce each part."""
    if isinstance(key, Mapping):
        parts = tuple(key.get(name) for name in table.key)
    elif isinstance(key, tuple | list):
        parts = tuple(key)
    else:
        parts = (key,)
    if len(parts) != len(table.key):
        raise ValidationError(f"{table.name}: key needs {', '.join(table.key)}", table=table.name)
    return tuple(
        coerce_value(table, table.column(name), part)
        for name, part in zip(table.key, parts, strict=True)
    )


def to_json_value(value: Any) -> Any:
    """Canonical value -> JSON-friendly value (dates as ISO text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def row_to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_json_value(value) for name, value in row.items()}
