"""Where a daily recompute starts for each athlete: the day after its last stored day before
the date asked for, with that day's CTL/ATL, or its first activity when there is none."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from storage.repositories.base import EVERY_DATE
from storage.stores import Stores
from tasks.metrics.daily import DayState

Since = Mapping[str, date | None]


def spans_of(
    athletes: list[str], loads: pd.DataFrame, resume: dict[str, tuple[pd.Timestamp, DayState]]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict[str, Any]]]:
    """Each athlete's days to compute: from its resume day (or first activity) to its last
    activity on/after that. The scope of the rows replaced is from the resume day, or every
    date for an athlete computed from its first activity or with no activity at all."""
    first = loads.groupby("athleteId")["date"].min().to_dict() if not loads.empty else {}
    start_of = {a: resume[a][0] if a in resume else first.get(a) for a in athletes}
    known = pd.Series({a: s for a, s in start_of.items() if s is not None}, dtype="datetime64[ns]")
    later = loads[loads["date"] >= loads["athleteId"].map(known)] if not loads.empty else loads
    last_of = later.groupby("athleteId")["date"].max().to_dict() if not later.empty else {}
    spans: list[tuple[str, pd.Timestamp, pd.Timestamp, float, float]] = []
    scope: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    for athlete in athletes:
        start = start_of[athlete]
        if start is None:
            scope[athlete], results[athlete] = EVERY_DATE, {"from": None, "days": 0}
            continue
        state = resume[athlete][1] if athlete in resume else DayState()
        last = last_of.get(athlete, start - pd.Timedelta(days=1))
        spans.append((athlete, start, last, state.ctl, state.atl))
        # without a resume point its whole history is computed again: every old row goes
        scope[athlete] = iso_day(start) if athlete in resume else EVERY_DATE
        results[athlete] = {"from": iso_day(start), "days": max(int((last - start).days) + 1, 0)}
    frame = pd.DataFrame(spans, columns=["athleteId", "start", "last", "ctl", "atl"])
    frame["start"] = pd.to_datetime(frame["start"]).astype("datetime64[ns]")
    frame["last"] = pd.to_datetime(frame["last"]).astype("datetime64[ns]")
    return frame, scope, results


def resume_points(stores: Stores, since: Since) -> dict[str, tuple[pd.Timestamp, DayState]]:
    """For each athlete with a date: the day after its last stored day before that date, and
    the CTL/ATL stored for it. Days between are rest days (every activity before the date was
    in the last recompute), so resuming there equals a full recompute. Months are read from
    the latest back until every athlete is found or none are left."""
    wanted = {a: iso_day(pd.Timestamp(d)) for a, d in since.items() if d is not None}
    found: dict[str, tuple[pd.Timestamp, DayState]] = {}
    repository = stores.repository("daily_metrics")
    floor = pd.Timestamp(min(wanted.values())) if wanted else None
    lookback, high = RESUME_LOOKBACK_DAYS, None
    while floor is not None and len(found) < len(wanted):
        last = lookback >= FULL_LOOKBACK_DAYS
        low = None if last else iso_day(floor - pd.Timedelta(days=lookback))
        stored = repository.read_frame(since=low, before=high)  # months not read yet
        stored = stored[stored["athleteId"].isin([a for a in wanted if a not in found])]
        before = stored[stored["date"] < stored["athleteId"].map(wanted)]
        latest = before.sort_values("date").groupby("athleteId").tail(1)
        counts = latest["activityCount"]
        for athlete, day, ctl, atl, count in zip(
            latest["athleteId"], latest["date"], latest["ctl"], latest["atl"], counts, strict=True
        ):
            if not (pd.isna(ctl) or pd.isna(atl)):
                state = DayState(float(ctl), float(atl), trained=not (pd.isna(count) or count == 0))
                found[athlete] = (pd.Timestamp(day) + pd.Timedelta(days=1), state)
        if last:
            break
        lookback, high = lookback * 4, low
    return found


RESUME_LOOKBACK_DAYS = 14  # most athletes trained within this; older months are read if not
FULL_LOOKBACK_DAYS = 14 * 4**4  # past this (~10 years), read every month


def stranded(resume: dict[str, tuple[pd.Timestamp, DayState]], loads: pd.DataFrame) -> list[str]:
    """Athletes whose resume day follows a rest day and who have no activity from it on: the
    activity those rest days led up to went (deleted, moved to another athlete or an earlier
    day). Resuming would keep the rest days; a full recompute ends at the last activity."""
    rested = {a: start for a, (start, state) in resume.items() if not state.trained}
    if not rested:
        return []
    starts = loads["athleteId"].map(pd.Series(rested, dtype="datetime64[ns]"))
    active = set(loads.loc[loads["date"] >= starts, "athleteId"]) if not loads.empty else set()
    return [athlete for athlete in rested if athlete not in active]


def iso_day(day: pd.Timestamp) -> str:
    return str(day.strftime("%Y-%m-%d"))
