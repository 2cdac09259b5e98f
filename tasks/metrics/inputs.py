"""Reading metric inputs from the repositories, and writing results back by athlete scope."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from storage.csv.frames import as_frame
from storage.stores import Stores
from storage.tables import get_table


def read_for(
    stores: Stores, table: str, athletes: Iterable[str] | None, since: str | None = None
) -> pd.DataFrame:
    """The rows of these athletes (None: all); `since`: only rows dated on/after it."""
    filters = None if athletes is None else {"athleteId": list(athletes)}
    return stores.repository(table).read_frame(filters, since=since)


def timezones(stores: Stores, athletes: Iterable[str] | None) -> dict[str, str]:
    frame = read_for(stores, "athlete", athletes)
    return {
        str(a): str(z)
        for a, z in zip(frame["athleteId"], frame["timezone"], strict=True)
        if isinstance(z, str) and z
    }


def to_frame_form(table: str, frame: pd.DataFrame, date_columns: Iterable[str]) -> pd.DataFrame:
    out = frame.copy()
    for name in date_columns:
        out[name] = pd.to_datetime(out[name]).dt.strftime("%Y-%m-%d")
    return as_frame(get_table(table), out)


def write_scoped(
    stores: Stores, table: str, frame: pd.DataFrame, scope: Mapping[str, str], date_column: str
) -> int:
    """Replace the rows of each athlete from its scope date on with `frame` (frame form)."""
    return stores.repository(table).replace_scope(frame, scope, date_column)
