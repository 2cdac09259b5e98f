"""Weekly rollups (weeks start Monday, local): sums, plan compliance, monotony, strain, ACWR
and the fitness/fatigue values at the week's last computed day."""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEKLY_COLUMNS = [
    "athleteId",
    "weekStartDate",
    "load",
    "durationSec",
    "distanceM",
    "activityCount",
    "plannedLoad",
    "compliance",
    "monotony",
    "strain",
    "acwr",
    "ctl",
    "atl",
    "tsb",
]


def weekly_rows(daily: pd.DataFrame, planned: pd.DataFrame) -> pd.DataFrame:
    """Weekly rows of many athletes from their dense daily rows (date as Timestamp), sorted by
    athlete then date. Days before an athlete's first row count as load 0 in the windows;
    a window sums the same days in the same order whatever the frame starts with, so a
    recompute from a later day gives bit-identical weeks."""
    if daily.empty:
        return pd.DataFrame(columns=WEEKLY_COLUMNS)
    athletes = daily["athleteId"].to_numpy(dtype=object)
    dates = daily["date"].to_numpy(dtype="datetime64[ns]")
    load = _floats(daily, "load")
    new_athlete = np.concatenate([[True], athletes[1:] != athletes[:-1]])
    first_row = np.flatnonzero(new_athlete)[np.cumsum(new_athlete) - 1]
    rows = np.arange(len(load))
    mean7, squares7 = _window_mean(load, rows, first_row, 7)
    mean28, _ = _window_mean(load, rows, first_row, 28)
    var7 = np.maximum(squares7 - mean7**2, 0.0)
    weekday = pd.DatetimeIndex(dates).day_of_week.to_numpy()
    week = dates - weekday.astype("timedelta64[D]")
    starts = np.flatnonzero(new_athlete | np.concatenate([[True], week[1:] != week[:-1]]))
    ends = np.concatenate([starts[1:], [len(week)]]) - 1
    weeks = pd.DataFrame(
        {
            "athleteId": athletes[starts],
            "weekStartDate": week[starts],
            "load": np.add.reduceat(load, starts),
            "durationSec": np.add.reduceat(_floats(daily, "durationSec"), starts),
            "distanceM": np.add.reduceat(_floats(daily, "distanceM"), starts),
            "activityCount": np.add.reduceat(_floats(daily, "activityCount"), starts),
            "mean7": mean7[ends],
            "std7": np.sqrt(var7)[ends],
            "mean28": mean28[ends],
            "ctl": _floats(daily, "ctl")[ends],
            "atl": _floats(daily, "atl")[ends],
            "tsb": _floats(daily, "tsb")[ends],
        }
    )
    weeks = weeks.merge(_planned_by_week(planned), on=["athleteId", "weekStartDate"], how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        weeks["compliance"] = np.where(
            weeks["plannedLoad"] > 0, weeks["load"] / weeks["plannedLoad"], np.nan
        )
        # a 7-day std below float noise is a constant week: monotony undefined
        constant = weeks["std7"] <= 1e-9 * np.maximum(weeks["mean7"].abs(), 1.0)
        weeks["monotony"] = np.where(constant, np.nan, weeks["mean7"] / weeks["std7"])
        weeks["acwr"] = np.where(weeks["mean28"] > 0, weeks["mean7"] / weeks["mean28"], np.nan)
    weeks["strain"] = weeks["load"] * weeks["monotony"]
    return weeks[WEEKLY_COLUMNS]


def _window_mean(
    values: np.ndarray, rows: np.ndarray, first_row: np.ndarray, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the value and of its square over each row's last `days` rows of its athlete."""
    total, squares = np.zeros(len(values)), np.zeros(len(values))
    for back in range(days):
        source = rows - back
        valid = source >= first_row
        picked = np.where(valid, values[np.maximum(source, 0)], 0.0)
        total += picked
        squares += picked**2
    return total / days, squares / days


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.nan_to_num(frame[column].to_numpy(dtype=float, na_value=np.nan))


def _planned_by_week(planned: pd.DataFrame) -> pd.DataFrame:
    columns = ["athleteId", "weekStartDate", "plannedLoad"]
    if planned.empty:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns}).astype(
            {"weekStartDate": "datetime64[ns]", "plannedLoad": float}
        )
    days = pd.to_datetime(planned["date"])
    week = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).astype("datetime64[ns]")
    load = planned["plannedLoad"].astype(float).fillna(0)
    grouped = load.groupby([planned["athleteId"].to_numpy(), week.to_numpy()]).sum()
    return grouped.rename_axis(["athleteId", "weekStartDate"]).rename("plannedLoad").reset_index()
