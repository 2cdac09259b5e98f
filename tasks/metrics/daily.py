"""Daily load and the fitness/fatigue model: CTL and ATL are exponentially weighted loads,
TSB is yesterday's CTL minus yesterday's ATL."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

DAILY_COLUMNS = [
    "athleteId",
    "date",
    "load",
    "durationSec",
    "distanceM",
    "activityCount",
    "ctl",
    "atl",
    "tsb",
]


@dataclass(frozen=True)
class DayState:
    """CTL and ATL at the end of the day before a computed range (0 before the first day)."""

    ctl: float = 0.0
    atl: float = 0.0
    trained: bool = True  # False: a rest day, stored because a later day had an activity


def exponential_load(loads: np.ndarray, days: float, start: float) -> np.ndarray:
    """x(d) = x(d-1) + (load(d) - x(d-1)) * (1 - e^(-1/days)), from x(-1) = start."""
    if len(loads) == 0:
        return loads.astype(float)
    k = 1 - math.exp(-1 / days)
    filtered, _ = lfilter([k], [1, -(1 - k)], loads, zi=[(1 - k) * start])
    return np.asarray(filtered, dtype=float)


def daily_rows(
    loads: pd.DataFrame, spans: pd.DataFrame, ctl_days: float, atl_days: float
) -> pd.DataFrame:
    """Every day start..last of each span (rest days load 0), many athletes at once.
    `spans`: athleteId, start, last (Timestamps), ctl, atl (the state the day before start);
    `loads`: per-activity rows (athleteId, date, load, durationSec, distanceM)."""
    starts = spans["start"].to_numpy(dtype="datetime64[ns]")
    lengths = (spans["last"].to_numpy(dtype="datetime64[ns]") - starts) // np.timedelta64(1, "D")
    lengths = np.maximum(lengths.astype(np.int64) + 1, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    total = int(offsets[-1])
    span_of = pd.Series(np.arange(len(spans)), index=spans["athleteId"].to_numpy())
    which = loads["athleteId"].map(span_of).to_numpy(dtype=float, na_value=np.nan)
    known = ~np.isnan(which)
    rows = which[known].astype(np.int64)
    day = (loads["date"].to_numpy(dtype="datetime64[ns]")[known] - starts[rows]) // np.timedelta64(
        1, "D"
    )
    inside = (day >= 0) & (day < lengths[rows])
    index = (offsets[rows] + day)[inside].astype(np.int64)

    def per_day(column: str) -> np.ndarray:
        values = loads[column].to_numpy(dtype=float, na_value=np.nan)[known][inside]
        return np.bincount(index, weights=np.nan_to_num(values), minlength=total)[:total]

    load = per_day("load")
    ctl, atl = np.zeros(total), np.zeros(total)
    previous_ctl, previous_atl = np.zeros(total), np.zeros(total)
    start_ctl = spans["ctl"].to_numpy(dtype=float)
    start_atl = spans["atl"].to_numpy(dtype=float)
    for k in np.flatnonzero(lengths > 0).tolist():
        window = slice(int(offsets[k]), int(offsets[k + 1]))
        ctl[window] = exponential_load(load[window], ctl_days, start_ctl[k])
        atl[window] = exponential_load(load[window], atl_days, start_atl[k])
        previous_ctl[window] = np.concatenate([[start_ctl[k]], ctl[window][:-1]])
        previous_atl[window] = np.concatenate([[start_atl[k]], atl[window][:-1]])
    within = np.arange(total) - np.repeat(offsets[:-1], lengths)
    return pd.DataFrame(
        {
            "athleteId": np.repeat(spans["athleteId"].to_numpy(dtype=object), lengths),
            "date": np.repeat(starts, lengths) + within.astype("timedelta64[D]"),
            "load": load,
            "durationSec": per_day("durationSec"),
            "distanceM": per_day("distanceM"),
            "activityCount": np.bincount(index, minlength=total)[:total].astype("int64"),
            "ctl": ctl,
            "atl": atl,
            "tsb": previous_ctl - previous_atl,
        }
    )
