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


def exponential_load(loads: np.ndarray, days: float, start: float) -> np.ndarray:
    """x(d) = x(d-1) + (load(d) - x(d-1)) * (1 - e^(-1/days)), from x(-1) = start."""
    if len(loads) == 0:
        return loads.astype(float)
    k = 1 - math.exp(-1 / days)
    filtered, _ = lfilter([k], [1, -(1 - k)], loads, zi=[(1 - k) * start])
    return np.asarray(filtered, dtype=float)


def daily_series(
    athlete_id: str,
    loads: pd.DataFrame,
    first: pd.Timestamp,
    last: pd.Timestamp,
    state: DayState,
    ctl_days: float,
    atl_days: float,
) -> pd.DataFrame:
    """Every day first..last (rest days load 0) from per-activity loads of that athlete."""
    days = pd.date_range(first, last, freq="D")
    grouped = loads.groupby("date").agg(
        load=("load", "sum"),
        durationSec=("durationSec", "sum"),
        distanceM=("distanceM", "sum"),
        activityCount=("activityId", "count"),
    )
    frame = grouped.reindex(days, fill_value=0)
    frame[["load", "durationSec", "distanceM"]] = (
        frame[["load", "durationSec", "distanceM"]].astype(float).fillna(0.0)
    )
    load = frame["load"].to_numpy(dtype=float)
    ctl = exponential_load(load, ctl_days, state.ctl)
    atl = exponential_load(load, atl_days, state.atl)
    previous_ctl = np.concatenate([[state.ctl], ctl])[: len(ctl)]  # empty when first > last
    previous_atl = np.concatenate([[state.atl], atl])[: len(atl)]
    return pd.DataFrame(
        {
            "athleteId": athlete_id,
            "date": days,
            "load": load,
            "durationSec": frame["durationSec"].to_numpy(),
            "distanceM": frame["distanceM"].to_numpy(),
            "activityCount": frame["activityCount"].to_numpy(dtype="int64"),
            "ctl": ctl,
            "atl": atl,
            "tsb": previous_ctl - previous_atl,
        }
    )
