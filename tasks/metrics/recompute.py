"""Incremental recompute: from a date on, starting from the stored state of the day before.
One recompute at a time (the coordination's metrics lock, on every host); all athletes of a
call share one write per table."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from storage.coordination import WATERMARK
from storage.errors import ValidationError
from storage.limits import YEARS
from storage.repositories.base import EVERY_DATE
from storage.repositories.frames import datetime_to_text
from storage.stores import Stores
from tasks.metrics.daily import daily_rows
from tasks.metrics.inputs import (
    read_for,
    timezones,
    to_frame_form,
    write_scoped,
)
from tasks.metrics.links import link_planned, link_recompute_dates
from tasks.metrics.load import activity_loads
from tasks.metrics.resume import iso_day, resume_points, spans_of, stranded
from tasks.metrics.weekly import weekly_rows
from tasks.sessions import sync_session_activities

Since = Mapping[str, date | None]


EARLIEST_DATA = date(YEARS[0], 1, 1)  # no stored date is earlier


def parse_since(value: Any) -> date | None:
    """An ISO date, or None for everything: so is a date before any data (the "0001-01-01"
    a change of an athlete's own row asks for), whose weeks and windows reach before the
    first date Python has."""
    if value in (None, ""):
        return None
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationError(
            f"since={str(value)[:40]!r} is not an ISO date (YYYY-MM-DD)", field="since"
        ) from None
    return None if day < EARLIEST_DATA else day


def _one_at_a_time(stores: Stores) -> AbstractContextManager[None]:
    """The metrics lock, waited for as long as a job may run."""
    return stores.coordination.metrics_lock(max(stores.settings.task_soft_time_limit, 1))


def check_athlete(athlete_id: Any) -> str:
    if not isinstance(athlete_id, str) or not athlete_id.strip() or len(athlete_id) > 128:
        raise ValidationError("athlete_id must be a non-empty string", field="athlete_id")
    return athlete_id


def recompute_daily(stores: Stores, since: Since) -> dict[str, dict[str, Any]]:
    """Per-activity loads and daily rows for each athlete from its date (None = full). Only
    the months from the earliest resume day on are read when every athlete can resume."""
    with _one_at_a_time(stores):
        return _daily(stores, since)[0]


def _daily(stores: Stores, since: Since) -> tuple[dict[str, dict[str, Any]], pd.DataFrame | None]:
    """recompute_daily under the caller's metrics lock; with the daily rows written when no
    athlete resumed, which are then every daily row the athletes have."""
    settings = stores.settings
    sync_session_activities(stores)  # of the sessions saved since the last recompute
    athletes = list(since)
    resume = resume_points(stores, since)
    floor = None
    if all(athlete in resume for athlete in athletes) and resume:
        floor = iso_day(min(start for start, _ in resume.values()) - pd.Timedelta(days=1))
    activities = read_for(stores, "activities", athletes, since=floor)
    thresholds, zones = read_for(stores, "thresholds", athletes), timezones(stores, athletes)
    loads = activity_loads(activities, thresholds, zones)
    if again := stranded(resume, loads):  # computed in full, so no rest days trail behind
        resume = {a: point for a, point in resume.items() if a not in again}
        kept = activities[~activities["athleteId"].isin(again)]
        activities = pd.concat([kept, read_for(stores, "activities", again)], ignore_index=True)
        loads = activity_loads(activities, thresholds, zones)
    spans, scope, results = spans_of(athletes, loads, resume)
    daily = daily_rows(loads, spans, settings.ctl_days, settings.atl_days)
    starts = loads["athleteId"].map(dict(zip(spans["athleteId"], spans["start"], strict=True)))
    new_loads = loads[loads["date"] >= pd.to_datetime(starts)] if not loads.empty else loads
    write_scoped(
        stores, "activities_metrics", _frame("activities_metrics", new_loads), scope, "date"
    )
    written = _frame("daily_metrics", daily)
    write_scoped(stores, "daily_metrics", written, scope, "date")
    link_planned(stores, loads, scope, activities)
    return results, (None if resume else written)


def _frame(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return to_frame_form(
            table, pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]")}), ["date"]
        ).iloc[0:0]
    return to_frame_form(table, frame, ["date"])


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def recompute_weekly(stores: Stores, since: Since) -> dict[str, dict[str, Any]]:
    """Weekly rows for each athlete from the week holding its date (None = all weeks). When
    every athlete has stored weeks, only daily rows from 28 days before the first week on are
    read: the 7- and 28-day windows of later weeks never look further back."""
    with _one_at_a_time(stores):
        return _weekly(stores, since, None)


def _weekly(
    stores: Stores, since: Since, all_daily: pd.DataFrame | None
) -> dict[str, dict[str, Any]]:
    """recompute_weekly under the caller's metrics lock. `all_daily`: every daily row of the
    athletes, as the daily recompute just wrote them, used instead of reading them back when
    all the athletes' weeks are computed again."""
    athletes = list(since)
    last_week = _last_stored_weeks(stores, since)
    incremental = {a: _first_week(since[a], last_week[a]) for a in athletes if a in last_week}
    floor = None
    if incremental and len(incremental) == len(athletes):
        floor = (min(incremental.values()) - timedelta(days=28)).isoformat()
    if floor is None and all_daily is not None:
        daily = all_daily[all_daily["athleteId"].isin(athletes)]
    else:
        daily = read_for(stores, "daily_metrics", athletes, since=floor)
    planned = read_for(stores, "planned_sessions", athletes)
    daily = daily.assign(date=pd.to_datetime(daily["date"]).astype("datetime64[ns]"))
    weeks = weekly_rows(daily.sort_values(["athleteId", "date"], kind="stable"), planned)
    earliest = weeks.groupby("athleteId")["weekStartDate"].min().to_dict()
    results: dict[str, dict[str, Any]] = {}
    scope: dict[str, str] = {}
    for athlete in athletes:
        if athlete not in earliest and athlete not in incremental:
            results[athlete] = {"from": None, "weeks": 0}
            continue
        first = incremental.get(athlete, date.min)
        if athlete in earliest:
            first = max(earliest[athlete].date(), first)
        scope[athlete] = first.isoformat()
    first_week = pd.to_datetime(weeks["athleteId"].map(scope))
    frame = weeks[weeks["weekStartDate"] >= first_week]
    counts = frame["athleteId"].value_counts().to_dict()
    for athlete, since_week in scope.items():
        results[athlete] = {"from": since_week, "weeks": int(counts.get(athlete, 0))}
    # old weeks go from the first week recomputed, even where no days are left to make
    # it; an athlete whose weeks were all computed again (none stored near its date)
    # loses every old week, as one with no daily rows left does
    replaced = {a: incremental[a].isoformat() if a in incremental else EVERY_DATE for a in athletes}
    write_scoped(
        stores,
        "weekly_metrics",
        to_frame_form("weekly_metrics", frame, ["weekStartDate"]),
        replaced,
        "weekStartDate",
    )
    return results


def _last_stored_weeks(stores: Stores, since: Since) -> dict[str, str]:
    """The last stored week of each athlete with a date, looked for from a week before the
    earliest requested week on (an athlete with none there recomputes all its weeks)."""
    wanted = [d for d in since.values() if d is not None]
    if not wanted:
        return {}
    low = (week_start(min(wanted)) - timedelta(days=7)).isoformat()
    stored = read_for(stores, "weekly_metrics", [a for a, d in since.items() if d], since=low)
    if stored.empty:
        return {}
    last = stored.sort_values("weekStartDate").drop_duplicates("athleteId", keep="last")
    return dict(zip(last["athleteId"].astype(str), last["weekStartDate"].astype(str), strict=True))


def _first_week(requested: date | None, last_stored: str) -> date:
    """The requested week, moved back to the last stored week: that week may have been stored
    while under way (its end moves as days are added), and the weeks after it never were."""
    last = date.fromisoformat(last_stored)
    return last if requested is None else min(week_start(requested), last)


def recompute_all(stores: Stores) -> dict[str, Any]:
    """Full recompute of every athlete with activities (the baseline of the benchmarks)."""
    sync_session_activities(stores)
    everyone: dict[str, date | None] = dict.fromkeys(
        sorted(stores.repository("activities").earliest_by_athlete("startTime"))
    )
    daily = recompute_daily(stores, everyone)
    recompute_weekly(stores, everyone)
    return {"athletes": len(daily)}


def nightly_rollup(stores: Stores) -> dict[str, Any]:
    """Athletes with changes since the last rollup: daily then weekly, from the earliest
    changed date of each. The watermark moves to this run's start only when it succeeds."""
    started = datetime_to_text(datetime.now().astimezone())
    sync_session_activities(stores)  # a flush that never ran left its sessions' rows unwritten
    coordination = stores.coordination
    result = recompute_many(stores, changed_athletes(stores, coordination.read_mark(WATERMARK)))
    coordination.write_mark(WATERMARK, started)
    return result


def recompute_many(stores: Stores, since: Since) -> dict[str, Any]:
    """Daily then weekly for these athletes, each from its date (None = full), in groups of
    `recompute_group` athletes where the activities' reads can be cut by athlete (SQL)."""
    athletes = list(since)
    size = len(athletes)
    if stores.repository("activities").filters_where_stored:
        size = stores.settings.recompute_group
    for start in range(0, len(athletes), max(size, 1)):
        group = {athlete: since[athlete] for athlete in athletes[start : start + size]}
        with _one_at_a_time(stores):  # daily and weekly of a group: no other run in between
            daily, written = _daily(stores, group)
            weeks_from = {a: weekly_since(group[a], r["from"]) for a, r in daily.items()}
            _weekly(stores, weeks_from, written)
    return {
        "athletes": len(since),
        "from": {a: (d.isoformat() if d else None) for a, d in sorted(since.items())},
    }


def weekly_since(requested: date | None, daily_from: str | None) -> date | None:
    """Where the weekly recompute that follows a daily one starts: the earlier of the date
    asked for and the first day computed, so a week whose days were removed (an activity
    moved later) is replaced too; None (every week) after a full daily recompute."""
    computed = parse_since(daily_from)
    if requested is None or computed is None:
        return None
    return min(requested, computed)


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
        earliest = stores.repository(table).earliest_by_athlete(column, changed_after=watermark)
        for athlete, day in earliest.items():
            note(athlete, date.fromisoformat(day) - timedelta(days=1))
    links = stores.repository("links").read_frame(changed_after=watermark)
    manual = links[links["method"] == "manual"]  # auto links are the recompute's own output
    for athlete, day in link_recompute_dates(stores, manual).items():
        note(athlete, date.fromisoformat(day))
    athletes = stores.repository("athlete").read_frame(changed_after=watermark)
    for athlete in athletes["athleteId"]:
        note(str(athlete), None)
    return since
