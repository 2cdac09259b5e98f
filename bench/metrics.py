"""Metrics benchmark: ~1M activities (1,000 athletes x 3 years). Prints, from one run:
full recompute vs a straight vectorised pandas/numpy computation of the same formulas (read
CSV, compute, write CSV), peak RSS of each, and the nightly rollup after one new day vs full.

    python -m bench.metrics [--athletes 1000] [--activities 1000000]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import activities, ratio_line
from storage.coordination import WATERMARK
from storage.repositories.frames import datetime_to_text
from storage.settings import Settings
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute

ZONES = ["UTC", "America/Denver", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]


def setup(settings: Settings, athletes: int, count: int) -> float:
    stores = Stores(settings)
    stores.initialize()
    ids = [f"ath{i:04d}" for i in range(athletes)]
    rows.upsert_rows(
        stores,
        "athlete",
        [{"athleteId": a, "timezone": ZONES[i % len(ZONES)]} for i, a in enumerate(ids)],
    )
    rows.upsert_rows(
        stores,
        "thresholds",
        [
            {
                "thresholdId": f"{a}-{sport}",
                "athleteId": a,
                "sport": sport,
                "validFrom": "2022-01-01",
                **extra,
            }
            for i, a in enumerate(ids)
            for sport, extra in (
                ("ride", {"ftpW": 200 + i % 100}),
                ("run", {"thresholdHr": 160 + i % 20}),
            )
        ],
    )
    started = time.perf_counter()
    stores.repository("activities").upsert_frame(activities(count, athletes=athletes))
    return time.perf_counter() - started


def straight_pandas(settings: Settings) -> None:
    """The same formulas and the same output columns with plain pandas/numpy: no
    repositories, locks, validation, bookkeeping or incremental state."""
    data = settings.data_dir
    months = sorted((data / "activities").glob("*.csv"))  # the same files trainlog reads
    acts = pd.concat([pd.read_csv(path) for path in months], ignore_index=True)
    thresholds = pd.read_csv(data / "thresholds.csv")
    zones = pd.read_csv(data / "athlete.csv").set_index("athleteId")["timezone"]
    stamps = pd.to_datetime(acts["startTime"], utc=True, format="ISO8601")
    day = pd.Series(pd.NaT, index=acts.index, dtype="datetime64[ns]")
    zone_of = acts["athleteId"].map(zones).fillna("UTC")
    for zone in zone_of.unique():
        mask = zone_of == zone
        day[mask] = stamps[mask].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
    acts["day"] = day
    acts = acts.sort_values("day")
    for value in ("ftpW", "thresholdHr"):
        valid = thresholds[thresholds[value].notna()][["athleteId", "sport", "validFrom", value]]
        valid = valid.assign(
            validFrom=pd.to_datetime(valid["validFrom"]).astype("datetime64[ns]")
        ).sort_values("validFrom")
        acts = pd.merge_asof(
            acts, valid, left_on="day", right_on="validFrom", by=["athleteId", "sport"]
        ).drop(columns="validFrom")
    power_if = acts["normalizedPowerW"].fillna(acts["avgPowerW"]) / acts["ftpW"]
    hr_if, rpe_if = acts["avgHr"] / acts["thresholdHr"], acts["rpe"] / 10
    use_power = power_if.notna() & np.isfinite(power_if)
    use_hr = ~use_power & hr_if.notna()
    use_rpe = ~use_power & ~use_hr & rpe_if.notna()
    acts["intensityFactor"] = power_if.where(use_power, hr_if.where(use_hr, rpe_if))
    acts["loadMethod"] = np.select([use_power, use_hr, use_rpe], ["power", "hr", "rpe"], "none")
    acts["load"] = (acts["durationSec"] / 3600 * acts["intensityFactor"] ** 2 * 100).fillna(0)
    acts[
        [
            "activityId",
            "athleteId",
            "day",
            "load",
            "loadMethod",
            "intensityFactor",
            "durationSec",
            "distanceM",
        ]
    ].to_csv(data / "base_loads.csv", index=False)
    daily = acts.groupby(["athleteId", "day"]).agg(
        load=("load", "sum"),
        durationSec=("durationSec", "sum"),
        distanceM=("distanceM", "sum"),
        activityCount=("activityId", "count"),
    )
    out = []
    for athlete, frame in daily.groupby(level=0):
        frame = frame.droplevel(0)
        days = pd.date_range(frame.index.min(), frame.index.max())
        dense = frame.reindex(days, fill_value=0)
        load = dense["load"]
        padded = pd.concat([pd.Series([0.0]), pd.Series(load.to_numpy())], ignore_index=True)
        ctl = padded.ewm(alpha=1 - math.exp(-1 / 42), adjust=False).mean().iloc[1:].to_numpy()
        atl = padded.ewm(alpha=1 - math.exp(-1 / 7), adjust=False).mean().iloc[1:].to_numpy()
        dense = dense.assign(athleteId=athlete, ctl=ctl, atl=atl)
        dense["tsb"] = (dense["ctl"] - dense["atl"]).shift(1, fill_value=0.0)
        rolling = load.rolling(7, min_periods=1)
        dense["mean7"] = rolling.sum() / 7
        dense["std7"] = np.sqrt(
            np.maximum((load**2).rolling(7, min_periods=1).sum() / 7 - dense["mean7"] ** 2, 0)
        )
        dense["mean28"] = load.rolling(28, min_periods=1).sum() / 28
        out.append(dense.rename_axis("date").reset_index())
    result = pd.concat(out, ignore_index=True)
    daily_columns = ["athleteId", "date", "load", "durationSec", "distanceM", "activityCount"]
    result[[*daily_columns, "ctl", "atl", "tsb"]].to_csv(data / "base_daily.csv", index=False)
    result["week"] = result["date"] - pd.to_timedelta(result["date"].dt.day_of_week, unit="D")
    weekly = result.groupby(["athleteId", "week"]).agg(
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
    weekly["plannedLoad"] = np.nan  # the benchmark plans nothing
    weekly["compliance"] = weekly["load"] / weekly["plannedLoad"]
    weekly["monotony"] = (weekly["mean7"] / weekly["std7"]).where(weekly["std7"] > 0)
    weekly["strain"] = weekly["load"] * weekly["monotony"]
    weekly["acwr"] = (weekly["mean7"] / weekly["mean28"]).where(weekly["mean28"] > 0)
    weekly.drop(columns=["mean7", "std7", "mean28"]).to_csv(data / "base_weekly.csv")


def _child(kind: str, home: str, queue: Any) -> None:
    settings = Settings.for_home(home)
    started = time.perf_counter()
    if kind == "full":
        recompute.recompute_all(Stores(settings))
    else:
        straight_pandas(settings)
    queue.put(
        (time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    )


def in_child(kind: str, home: Path) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(kind, str(home), queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--athletes", type=int, default=1000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    settings = Settings.for_home(home)
    ingest = setup(settings, args.athletes, args.activities)
    print(
        f"setup: {args.activities:,} activities for {args.athletes:,} athletes ingested "
        f"through the repository in {ingest:.1f}s"
    )
    base_time, base_rss = in_child("baseline", home)
    full_time, full_rss = in_child("full", home)
    print(f"straight pandas: {base_time:.1f}s, peak RSS {base_rss:,.0f} MB")
    print(f"full recompute:  {full_time:.1f}s, peak RSS {full_rss:,.0f} MB")
    print(ratio_line("full recompute / straight pandas", full_time / base_time, "<= 1.5"))
    print(ratio_line("full recompute peak RSS (GB)", full_rss / 1024, "<= 1.5"))
    stores = Stores(settings)
    check = stores.repository("daily_metrics").read_frame({"athleteId": "ath0007"})
    base = pd.read_csv(home / "data" / "base_daily.csv")
    base = base[base["athleteId"] == "ath0007"]
    print(
        f"cross-check ath0007 last CTL: trainlog {check['ctl'].iloc[-1]:.6f}, "
        f"straight pandas {base['ctl'].iloc[-1]:.6f}"
    )
    stores.coordination.write_mark(WATERMARK, datetime_to_text(datetime.now(UTC)))
    new_day = activities(args.athletes, athletes=args.athletes, seed=9, prefix="new")
    new_day["startTime"] = "2026-01-02T12:00:00Z"
    stores.repository("activities").upsert_frame(new_day)
    started = time.perf_counter()
    result = recompute.nightly_rollup(stores)
    nightly = time.perf_counter() - started
    print(f"nightly rollup after one new day ({result['athletes']} athletes): {nightly:.1f}s")
    print(ratio_line("nightly incremental / full recompute", nightly / full_time, "<= 0.05"))


if __name__ == "__main__":
    main()
