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
PAD_DAYS = 27  # days before the first day count as load 0 in the 7- and 28-day windows


def weekly_series(athlete_id: str, daily: pd.DataFrame, planned: pd.DataFrame) -> pd.DataFrame:
    """`daily`: the athlete's full dense daily series (date as Timestamp), sorted."""
    if daily.empty:
        return pd.DataFrame(columns=WEEKLY_COLUMNS)
    dates = pd.DatetimeIndex(daily["date"])
    load = daily["load"].to_numpy(dtype=float)
    padded = np.concatenate([np.zeros(PAD_DAYS), load])
    sums = np.concatenate([[0.0], np.cumsum(padded)])
    squares = np.concatenate([[0.0], np.cumsum(padded**2)])
    end = np.arange(len(load)) + PAD_DAYS + 1  # exclusive end index into sums for each day
    mean7 = (sums[end] - sums[end - 7]) / 7
    var7 = np.maximum((squares[end] - squares[end - 7]) / 7 - mean7**2, 0.0)
    mean28 = (sums[end] - sums[end - 28]) / 28
    week = dates - pd.to_timedelta(dates.day_of_week, unit="D")
    frame = daily.assign(week=week, mean7=mean7, std7=np.sqrt(var7), mean28=mean28)
    grouped = frame.groupby("week", sort=True)
    weeks = grouped.agg(
        load=("load", "sum"),
        durationSec=("durationSec", "sum"),
        distanceM=("distanceM", "sum"),
        activityCount=("activityCount", "sum"),
        mean7=("mean7", "last"),
        std7=("std7", "last"),
        mean28=("mean28", "last"),
        ctl=("ctl", "last"),
        atl=("atl", "last"),
        tsb=("tsb", "last"),
    )
    planned_by_week = _planned_by_week(planned)
    weeks["plannedLoad"] = planned_by_week.reindex(weeks.index).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        weeks["compliance"] = np.where(
            weeks["plannedLoad"] > 0, weeks["load"] / weeks["plannedLoad"], np.nan
        )
        # a 7-day std below float noise is a constant week: monotony undefined
        constant = weeks["std7"] <= 1e-9 * np.maximum(weeks["mean7"].abs(), 1.0)
        weeks["monotony"] = np.where(constant, np.nan, weeks["mean7"] / weeks["std7"])
        weeks["acwr"] = np.where(weeks["mean28"] > 0, weeks["mean7"] / weeks["mean28"], np.nan)
    weeks["strain"] = weeks["load"] * weeks["monotony"]
    weeks = weeks.reset_index().rename(columns={"week": "weekStartDate"})
    weeks["athleteId"] = athlete_id
    return weeks[WEEKLY_COLUMNS]


def _planned_by_week(planned: pd.DataFrame) -> pd.Series:
    if planned.empty:
        return pd.Series(dtype=float)
    days = pd.to_datetime(planned["date"])
    week = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return planned["plannedLoad"].astype(float).fillna(0).groupby(week.to_numpy()).sum()
