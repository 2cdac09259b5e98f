"""Codecs of dates, timestamps (canonical: aware UTC) and JSON values."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storage.codecs.base import Codec, Problems

ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
TIMESTAMP_LIKE = ("string", "empty", "datetime", "datetime64")  # pandas.api.types.infer_dtype


def parse_datetime(value: Any) -> datetime:
    """ISO-8601 text or datetime -> aware UTC datetime; naive input is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise TypeError("not a datetime")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        return date.fromisoformat(text[:10] if len(text) == 10 else text)
    raise TypeError("not a date")


def datetime_to_text(value: datetime) -> str:
    utc = parse_datetime(value).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def utc_microseconds(values: pd.Series) -> np.ndarray:
    """ISO-8601 text or timestamps -> naive UTC datetime64[us], NaT where missing or unreadable.
    What pandas refuses is parsed one by one: pandas before 3.0 holds only the years 1677-2262."""
    parsed = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    array = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
    for position in np.flatnonzero(np.isnat(array) & values.notna().to_numpy()):
        try:
            stamp = parse_datetime(values.iloc[position]).replace(tzinfo=None)
        except (TypeError, ValueError, OverflowError):
            continue
        array[position] = np.datetime64(stamp, "us")
    return array


def stamps_text(array: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Naive UTC datetime64[us] -> canonical ISO text: seconds always, microseconds only when
    set; None where NaT."""
    text = np.datetime_as_string(array, unit="s", timezone="UTC")  # "...:SSZ"
    missing = np.isnat(array)
    has_fraction = ~missing & (array.view("int64") % 1_000_000 != 0)
    if has_fraction.any():
        fine = np.datetime_as_string(array, unit="us", timezone="UTC")
        text = np.where(has_fraction, fine, text)
    return pd.Series(text.astype(object), index=index, dtype=object).where(~missing, None)


def datetime_text(values: pd.Series) -> pd.Series:
    """ISO-8601 text or timestamps -> canonical ISO text (see stamps_text)."""
    return stamps_text(utc_microseconds(values), values.index)


def json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def without_numbers(series: pd.Series) -> pd.Series:
    """Numbers blanked, so that they are refused as timestamps: pandas would read one as an
    epoch count (deprecated, and in pandas 4 the rule) and 1700000000 would become 1970."""
    if pd.api.types.infer_dtype(series, skipna=True) in TIMESTAMP_LIKE:
        return series
    values = series.to_numpy(dtype=object)
    numbers = np.fromiter(
        (isinstance(v, int | float | np.number | np.bool_) for v in values), bool, len(values)
    )
    return series.astype(object).where(~numbers, None)


class DateCodec(Codec):
    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Date()

    def coerce(self, value: Any) -> Any:
        return parse_date(value)

    def to_frame(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value

    def from_frame(self, value: Any) -> Any:
        try:
            return date.fromisoformat(value)
        except ValueError:  # a hand-edited '2026-3-1', which pandas read (csv/codec.py)
            return pd.Timestamp(value).date()

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        text = series.astype(str).str.slice(0, 10).where(~missing)
        parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        bad = ~missing & parsed.isna().to_numpy()
        ok = text.str.match(ISO_DATE).fillna(False).to_numpy(bool)
        formatted = text.where(ok, parsed.dt.strftime("%Y-%m-%d")).astype(object)
        for position in np.flatnonzero(bad & ok):  # pandas before 3.0 holds only 1677-2262
            try:
                formatted.iloc[position] = date.fromisoformat(text.iloc[position]).isoformat()
            except ValueError:
                continue
            bad[position] = False
        return formatted.where(~missing, None), [(bad, "is not a date (YYYY-MM-DD)")]


class DatetimeCodec(Codec):
    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.DateTime(timezone=True)

    def coerce(self, value: Any) -> Any:
        return parse_datetime(value)

    def to_frame(self, value: Any) -> Any:
        return datetime_to_text(value) if isinstance(value, datetime) else value

    def from_frame(self, value: Any) -> Any:
        try:
            return parse_datetime(value)
        except ValueError:  # a hand-edited '12:5:00', which pandas read (csv/codec.py)
            return parse_datetime(pd.Timestamp(value).to_pydatetime())

    def from_db(self, value: Any) -> Any:
        return parse_datetime(value)  # SQLite keeps naive UTC text

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        stamps = utc_microseconds(without_numbers(series))
        bad = ~missing & np.isnat(stamps)
        return stamps_text(stamps, series.index), [(bad, "is not an ISO-8601 timestamp")]


class JsonCodec(Codec):
    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.JSON()

    def coerce(self, value: Any) -> Any:
        json.dumps(value, allow_nan=False)  # TypeError / ValueError: not JSON
        return value

    def to_frame(self, value: Any) -> Any:
        return json_text(value)

    def from_frame(self, value: Any) -> Any:
        return json.loads(value)

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        values = series.to_numpy(dtype=object)
        try:
            texts = [None if m else json_text(v) for v, m in zip(values, missing, strict=True)]
        except (TypeError, ValueError):
            bad = np.array(
                [not m and not _jsonable(v) for v, m in zip(values, missing, strict=True)]
            )
            return series, [(bad, "is not JSON")]
        return pd.Series(texts, index=series.index, dtype=object), []


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False
