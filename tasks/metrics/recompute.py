"""Incremental recompute: from a date on, starting from the stored state of the day before.
One recompute at a time (metrics_lock); all athletes of a call share one write per table."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from storage.errors import ValidationError
from storage.repositories.frames import datetime_to_text
from storage.stores import Stores
from tasks.metrics.daily import DayState, daily_series
from tasks.metrics.inputs import (
    changed_since,
    metrics_lock,
    read_for,
    read_watermark,
    timezones,
    to_frame_form,
    write_scoped,
    write_watermark,
)
from tasks.metrics.links import link_planned
from tasks.metrics.load import activity_loads
from tasks.metrics.weekly import weekly_series

Since = Mapping[str, date | None]


def parse_since(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationError(
            f"since={value!r} is not an ISO date (YYYY-MM-DD)", field="since"
        ) from None


def check_athlete(athlete_id: Any) -> str:
    if not isinstance(athlete_id, str) or not athlete_id.strip() or len(athlete_id) > 128:
        raise ValidationError("athlete_id must be a non-empty string", field="athlete_id")
    return athlete_id


def _state_before(
    stored: dict[tuple[str, str], tuple[float, float]], athlete: str, day: pd.Timestamp
) -> DayState | None:
    """CTL/ATL stored for the day before `day` (a dict built once: no scan per athlete)."""
    found = stored.get((athlete, (day - pd.Timedelta(days=1)).strftime("%Y-%m-%d")))
    if found is None or pd.isna(found[0]) or pd.isna(found[1]):
        return None
    return DayState(float(found[0]), float(found[1]))


def _stored_states(
    stored: pd.DataFrame, since: Since
) -> dict[tuple[str, str], tuple[float, float]]:
    """Only the rows a requested start needs: (athlete, day before start) -> (ctl, atl)."""
    wanted = {
        (a, (pd.Timestamp(d) - pd.Timedelta(days=1)).strftime("%Y-%m-%d"))
        for a, d in since.items()
        if d is not None
    }
    if not wanted or stored.empty:
        return {}
    keys = list(zip(stored["athleteId"], stored["date"], strict=True))
    return {
        k: (c, t) for k, c, t in zip(keys, stored["ctl"], stored["atl"], strict=True) if k in wanted
    }


def recompute_daily(stores: Stores, since: Since) -> dict[str, dict[str, Any]]:
    """Per-activity loads and daily rows for each athlete from its date (None = full)."""
    settings = stores.settings
    with metrics_lock(stores):
        athletes = list(since)
        loads = activity_loads(
            read_for(stores, "activities", athletes),
            read_for(stores, "thresholds", athletes),
            timezones(stores, athletes),
        )
        stored = _stored_states(read_for(stores, "daily_metrics", athletes), since)
        results: dict[str, dict[str, Any]] = {}
        scope: dict[str, str] = {}
        daily_parts, load_parts = [], []
        by_athlete = dict(tuple(loads.groupby("athleteId"))) if not loads.empty else {}
        for athlete in athletes:
            mine = by_athlete.get(athlete)
            if mine is None or mine.empty:
                scope[athlete], results[athlete] = "0000-00-00", {"from": None, "days": 0}
                continue
            first, last = mine["date"].min(), mine["date"].max()
            start, state = first, DayState()
            requested = since[athlete]
            if requested is not None and pd.Timestamp(requested) > first:
                previous = _state_before(stored, athlete, pd.Timestamp(requested))
                if previous is not None:
                    start, state = pd.Timestamp(requested), previous
            part = mine[mine["date"] >= start]
            daily_parts.append(
                daily_series(
                    athlete, part, start, last, state, settings.ctl_days, settings.atl_days
                )
            )
            load_parts.append(part)
            scope[athlete] = start.strftime("%Y-%m-%d")
            results[athlete] = {
                "from": scope[athlete],
                "days": max(int((last - start).days) + 1, 0),
            }
        daily = pd.concat(daily_parts, ignore_index=True) if daily_parts else pd.DataFrame()
        new_loads = pd.concat(load_parts, ignore_index=True) if load_parts else pd.DataFrame()
        write_scoped(
            stores, "activities_metrics", _frame("activities_metrics", new_loads), scope, "date"
        )
        write_scoped(stores, "daily_metrics", _frame("daily_metrics", daily), scope, "date")
        link_planned(stores, loads, scope)
    return results


def _frame(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return to_frame_form(
            table, pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]")}), ["date"]
        ).iloc[0:0]
    return to_frame_form(table, frame, ["date"])


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def recompute_weekly(stores: Stores, since: Since) -> dict[str, dict[str, Any]]:
    """Weekly rows for each athlete from the week holding its date (None = all weeks)."""
    with metrics_lock(stores):
        athletes = list(since)
        daily = read_for(stores, "daily_metrics", athletes)
        planned = read_for(stores, "planned_sessions", athletes)
        stored_weeks = read_for(stores, "weekly_metrics", athletes)
        last_week = (
            stored_weeks.groupby("athleteId")["weekStartDate"].max().to_dict()
            if (not stored_weeks.empty)
            else {}
        )
        results: dict[str, dict[str, Any]] = {}
        scope: dict[str, str] = {}
        parts = []
        daily_by = dict(tuple(daily.groupby("athleteId"))) if not daily.empty else {}
        planned_by = dict(tuple(planned.groupby("athleteId"))) if not planned.empty else {}
        for athlete in athletes:
            mine = daily_by.get(athlete)
            if mine is None or mine.empty:
                scope[athlete], results[athlete] = "0000-00-00", {"from": None, "weeks": 0}
                continue
            mine = mine.assign(date=pd.to_datetime(mine["date"])).sort_values("date")
            weeks = weekly_series(athlete, mine, planned_by.get(athlete, planned.iloc[0:0]))
            first = _first_week(
                since[athlete], last_week.get(athlete), weeks["weekStartDate"].min().date()
            )
            weeks = weeks[weeks["weekStartDate"] >= pd.Timestamp(first)]
            parts.append(weeks)
            scope[athlete] = first.isoformat()
            results[athlete] = {"from": scope[athlete], "weeks": len(weeks)}
        frame = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame({"weekStartDate": pd.Series([], dtype="datetime64[ns]")})
        )
        write_scoped(
            stores,
            "weekly_metrics",
            to_frame_form("weekly_metrics", frame, ["weekStartDate"]),
            scope,
            "weekStartDate",
        )
    return results


def _first_week(requested: date | None, last_stored: str | None, earliest: date) -> date:
    """The requested week, moved back to the last stored week: that week may have been stored
    while under way (its end moves as days are added), and the weeks after it never were."""
    if requested is None or last_stored is None:
        return earliest
    return max(earliest, min(week_start(requested), date.fromisoformat(last_stored)))


def recompute_all(stores: Stores) -> dict[str, Any]:
    """Full recompute of every athlete with activities (the baseline of the benchmarks)."""
    athletes = read_for(stores, "activities", None)["athleteId"].unique().tolist()
    everyone: dict[str, date | None] = dict.fromkeys(athletes)
    daily = recompute_daily(stores, everyone)
    recompute_weekly(stores, everyone)
    return {"athletes": len(daily)}


def nightly_rollup(stores: Stores) -> dict[str, Any]:
    """Athletes with changes since the last rollup: daily then weekly, from the earliest
    changed date of each. The watermark moves to this run's start only when it succeeds."""
    started = datetime_to_text(datetime.now().astimezone())
    watermark = read_watermark(stores)
    since = changed_athletes(stores, watermark)
    if since:
        daily = recompute_daily(stores, since)
        recompute_weekly(stores, {a: parse_since(r["from"]) for a, r in daily.items()})
    write_watermark(stores, started)
    return {
        "athletes": len(since),
        "from": {a: (d.isoformat() if d else None) for a, d in sorted(since.items())},
    }


def changed_athletes(stores: Stores, watermark: str | None) -> dict[str, date | None]:
    since: dict[str, date | None] = {}

    def note(athlete: str, day: date | None) -> None:
        if athlete not in since:
            since[athlete] = day
        else:
            current = since[athlete]
            since[athlete] = None if current is None or day is None else min(day, current)

    for table, column in (
        ("activities", "startTime"),
        ("thresholds", "validFrom"),
        ("planned_sessions", "date"),
    ):
        changed = changed_since(stores.repository(table).read_frame(), watermark)
        if changed.empty:
            continue
        days = pd.to_datetime(changed[column].str.slice(0, 10)) - pd.Timedelta(days=1)
        for athlete, day in days.groupby(changed["athleteId"].to_numpy()).min().items():
            note(str(athlete), day.date())
    for athlete in changed_since(stores.repository("athlete").read_frame(), watermark)["athleteId"]:
        note(str(athlete), None)
    return since
