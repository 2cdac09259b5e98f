"""What every column type's codec provides (see storage/codecs/__init__.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

# (rows that fail, why): checked in order, the first failing one named in the error
Problems = list[tuple[np.ndarray, str]]


class Codec(ABC):
    frame_dtype = "object"  # the column's dtype in frame form
    csv_as_text = True  # the CSV reader takes the column as text (else parses as frame_dtype)

    @abstractmethod
    def sql_type(self) -> sa.types.TypeEngine[Any]: ...

    @abstractmethod
    def coerce(self, value: Any) -> Any:
        """One present value -> canonical Python; TypeError or ValueError saying why not."""

    @abstractmethod
    def coerce_series(self, series: pd.Series, missing: np.ndarray) -> tuple[pd.Series, Problems]:
        """A whole column (bulk rows) -> frame form, and the rows that fail and why."""

    def to_frame(self, value: Any) -> Any:
        """Canonical value -> frame cell."""
        return value

    def from_frame(self, value: Any) -> Any:
        """Frame cell (present) -> canonical value."""
        return value

    def from_db(self, value: Any) -> Any:
        """A value as the SQL driver returns it (present) -> canonical value."""
        return value

    def csv_cells(self, series: pd.Series) -> list[str] | None:
        """A frame column as CSV fields; None: it is text, which the CSV writer escapes."""
        return None

    def csv_cell(self, value: Any) -> str | None:
        """One present frame cell as a CSV field, as `csv_cells` formats it; None: text."""
        return None


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
