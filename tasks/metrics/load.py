"""Per-activity load with the athlete's threshold valid on that local date for that sport:
power, else heart rate, else RPE, else none."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

LOAD_COLUMNS = [
    "activityId",
    "athleteId",
    "date",
    "load",
    "loadMethod",
    "intensityFactor",
    "durationSec",
    "distanceM",
]


def empty_loads() -> pd.DataFrame:
    """No activity loads, with the dtypes a non-empty result has (pandas 3 will not compare
    an empty object column with dates)."""
    dtypes = {"date": "datetime64[ns]", "activityId": object, "athleteId": object}
    dtypes |= {"loadMethod": object}
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtypes.get(name, "float64")) for name in LOAD_COLUMNS}
    )


def local_dates(
    start_times: pd.Series, athletes: pd.Series, timezones: Mapping[str, str]
) -> pd.Series:
    """ISO UTC timestamps -> the athlete's local calendar date (UTC when no timezone)."""
    stamps = pd.to_datetime(start_times, utc=True, format="ISO8601")
    result = pd.Series(pd.NaT, index=start_times.index, dtype="datetime64[ns]")
    zones = athletes.map(lambda a: timezones.get(a) or "UTC")
    for zone in zones.unique():
        mask = zones == zone
        result[mask] = stamps[mask].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
    return result


def _thresholds_on(frame: pd.DataFrame, thresholds: pd.DataFrame) -> pd.DataFrame:
    """Attach the ftpW and thresholdHr valid on each activity's date for its sport: each from
    the latest row (validFrom <= date) that sets it, so an HR-only row keeps the older FTP."""
    ordered = frame.reset_index().sort_values("day")
    for value in ("ftpW", "thresholdHr"):
        valid = thresholds[thresholds[value].notna()] if not thresholds.empty else thresholds
        if valid.empty:
            ordered[value] = np.nan
            continue
        valid = (
            valid[["athleteId", "sport", "validFrom", value]]
            .assign(validFrom=pd.to_datetime(valid["validFrom"]).astype("datetime64[ns]"))
            .sort_values("validFrom")
        )
        ordered = pd.merge_asof(
            ordered,
            valid,
            left_on="day",
            right_on="validFrom",
            by=["athleteId", "sport"],
            direction="backward",
        ).drop(columns="validFrom")
    return ordered.set_index("index").sort_index()


def activity_loads(
    activities: pd.DataFrame, thresholds: pd.DataFrame, timezones: Mapping[str, str]
) -> pd.DataFrame:
    """One row per activity: local date, load, loadMethod, intensityFactor, duration, distance."""
    if activities.empty:
        return empty_loads()
    frame = activities[
        [
            "activityId",
            "athleteId",
            "sport",
            "startTime",
            "durationSec",
            "distanceM",
            "avgHr",
            "normalizedPowerW",
            "avgPowerW",
            "rpe",
        ]
    ].copy()
    frame["day"] = local_dates(frame["startTime"], frame["athleteId"], timezones)
    frame = _thresholds_on(frame, thresholds)
    hours = frame["durationSec"].astype(float).fillna(0).to_numpy() / 3600
    power = frame["normalizedPowerW"].fillna(frame["avgPowerW"]).astype(float).to_numpy()
    ftp = frame["ftpW"].astype(float).to_numpy()
    hr = frame["avgHr"].astype(float).to_numpy()
    threshold_hr = frame["thresholdHr"].astype(float).to_numpy()
    rpe = frame["rpe"].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        power_if, hr_if, rpe_if = power / ftp, hr / threshold_hr, rpe / 10
    use_power = np.isfinite(power_if) & (ftp > 0)
    use_hr = ~use_power & np.isfinite(hr_if) & (threshold_hr > 0)
    use_rpe = ~use_power & ~use_hr & np.isfinite(rpe_if)
    intensity = np.select([use_power, use_hr, use_rpe], [power_if, hr_if, rpe_if], np.nan)
    # power: duration x NP x IF / (FTP x 3600) x 100 == hours x IF^2 x 100, like the others
    load = np.where(np.isfinite(intensity), hours * intensity**2 * 100, 0.0)
    method = np.select([use_power, use_hr, use_rpe], ["power", "hr", "rpe"], "none")
    return pd.DataFrame(
        {
            "activityId": frame["activityId"].to_numpy(),
            "athleteId": frame["athleteId"].to_numpy(),
            "date": frame["day"].to_numpy(),
            "load": load,
            "loadMethod": method,
            "intensityFactor": intensity,
            "durationSec": frame["durationSec"].astype(float).to_numpy(),
            "distanceM": frame["distanceM"].astype(float).to_numpy(),
        }
    )
