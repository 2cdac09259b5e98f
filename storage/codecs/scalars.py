"""Codecs of text, whole numbers, numbers and booleans."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storage.codecs.base import Codec, Problems

OUTSIDE_INT64 = "is outside the whole numbers SQL stores (-2**63 to 2**63-1)"


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("not a number")
    parsed = float(value)
    if not math.isfinite(parsed):
        raise ValueError("not finite")
    return parsed


def whole_number(value: Any) -> int:
    """Exact: ints (and integral text) never pass through float, which rounds above 2**53."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    parsed = number(value)
    if not parsed.is_integer():
        raise ValueError("expected a whole number")
    return int(parsed)


def formatted(values: np.ndarray, missing: np.ndarray, form: Any) -> list[str]:
    """`form` applied to the present values only; missing ones are empty fields."""
    if not missing.any():
        return list(map(form, values.tolist()))
    out = np.full(len(values), "", dtype=object)
    present = ~missing
    if present.any():
        out[present] = list(map(form, values[present].tolist()))
    return out.tolist()  # type: ignore[no-any-return]


class TextCodec(Codec):
    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
            is_text = ~missing  # every present value is text (checked in C)
        else:
            values = series.to_numpy(dtype=object)
            is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
        return series.astype(object).where(~missing, None), [(~missing & ~is_text, "must be text")]


class FloatCodec(Codec):
    frame_dtype = "float64"
    csv_as_text = False
    name = "float"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Double()

    def coerce(self, value: Any) -> Any:
        return number(value)

    def from_frame(self, value: Any) -> Any:
        return float(value)

    def from_db(self, value: Any) -> Any:
        return float(value)  # PostgreSQL's driver may hand a Decimal

    def csv_cells(self, series: pd.Series) -> list[str] | None:
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return formatted(values, np.isnan(values), repr)

    def csv_cell(self, value: Any) -> str | None:
        return repr(float(value))

    def _numbers(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, np.ndarray]:
        """The column as float64, and the present values that are not finite numbers."""
        if series.dtype.kind in "fiu" or str(series.dtype) == "Int64" or missing.all():
            is_bool = np.zeros(len(series), bool)  # a numeric dtype holds no booleans
        else:
            is_bool = np.fromiter(
                (isinstance(v, bool | np.bool_) for v in series.to_numpy(object)), bool, len(series)
            )
        numbers = pd.to_numeric(series.where(~is_bool), errors="coerce").astype("float64")
        bad = ~missing & (numbers.isna().to_numpy() | ~np.isfinite(numbers.fillna(0).to_numpy()))
        return numbers, bad

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        numbers, bad = self._numbers(series, missing)
        return numbers, [(bad, f"is not a valid {self.name}")]


class IntCodec(FloatCodec):
    frame_dtype = "Int64"
    name = "int"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def coerce(self, value: Any) -> Any:
        whole = whole_number(value)
        if not -(2**63) <= whole < 2**63:
            raise ValueError(OUTSIDE_INT64)
        return whole

    def from_frame(self, value: Any) -> Any:
        return int(value)

    def from_db(self, value: Any) -> Any:
        return value

    def csv_cells(self, series: pd.Series) -> list[str] | None:
        missing = series.isna().to_numpy()
        numbers = series.astype("Int64").to_numpy(dtype="int64", na_value=0)
        return formatted(numbers, missing, str)

    def csv_cell(self, value: Any) -> str | None:
        return str(int(value))

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        if series.dtype.kind in "iu" or str(series.dtype) == "Int64":
            return series.astype("Int64"), []
        exact = self._exact(series, missing)
        if exact is not None:
            return exact
        numbers, bad = self._numbers(series, missing)
        fraction = ~missing & (numbers.fillna(0) % 1 != 0).to_numpy()
        outside = ~missing & ~bad & (numbers.abs().fillna(0) >= 2**63).to_numpy()
        problems = [
            (bad, f"is not a valid {self.name}"),
            (fraction, "must be a whole number"),
            (outside, OUTSIDE_INT64),
        ]
        whole = numbers.where(~(bad | fraction | outside)).round().astype("Int64")
        return whole, problems

    def _exact(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems] | None:
        """A column of Python ints (and gaps) taken as they are: through float64 (what pandas
        makes of ints with gaps) one above 2**53 would be rounded. None: not such a column."""
        if series.dtype != object:
            return None
        values = series.to_numpy(dtype=object)
        present = values[~missing]
        if not all(type(v) is int for v in present):  # bool is an int subclass: not taken
            return None
        outside = ~missing & np.fromiter(
            (not m and not -(2**63) <= v < 2**63 for v, m in zip(values, missing, strict=True)),
            bool,
            len(values),
        )
        kept = np.where(missing | outside, None, values)
        return pd.Series(pd.array(kept, dtype="Int64"), index=series.index), [
            (outside, OUTSIDE_INT64)
        ]


class BoolCodec(Codec):
    frame_dtype = "boolean"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Boolean()

    def coerce(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TypeError("expected true or false")

    def from_frame(self, value: Any) -> Any:
        return bool(value)

    def csv_cells(self, series: pd.Series) -> list[str] | None:
        flags = series.astype("boolean")
        words = flags.map({True: "true", False: "false"}).astype(object)
        return words.where(flags.notna(), "").tolist()  # type: ignore[no-any-return]

    def csv_cell(self, value: Any) -> str | None:
        return "true" if value else "false"

    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        lowered = series.map(lambda v: v if isinstance(v, bool | np.bool_) else str(v).lower())
        mapped = lowered.map({True: True, False: False, "true": True, "false": False})
        bad = ~missing & mapped.isna().to_numpy()
        return mapped.astype("boolean"), [(bad, "must be true or false")]
