"""Planned sessions linked to activities (same athlete, local date and sport; links made by hand
are kept) and planned_metrics: planned vs actual load per planned session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from storage.stores import Stores
from tasks.metrics.inputs import read_for, to_frame_form, write_scoped


def link_planned(
    stores: Stores, loads: pd.DataFrame, scope: Mapping[str, str], activities: pd.DataFrame
) -> None:
    """Auto links and planned_metrics from each athlete's scope date on; `loads` and
    `activities` hold (at least) the athletes' activities from those dates."""
    athletes = list(scope)
    planned = read_for(stores, "planned_sessions", athletes)
    if planned.empty:
        return
    links = read_for(stores, "links", athletes)
    manual = links[links["method"] == "manual"]
    acts = (
        loads.assign(day=loads["date"].dt.strftime("%Y-%m-%d")).drop(columns="date")
        if not loads.empty
        else pd.DataFrame(columns=["activityId", "athleteId", "day", "load"])
    )
    sports = activities[["activityId", "sport"]]
    acts = acts.merge(sports, on="activityId", how="left")
    auto = planned.merge(
        acts,
        left_on=["athleteId", "date", "sport"],
        right_on=["athleteId", "day", "sport"],
        how="inner",
    )
    auto = auto[~auto["activityId"].isin(manual["activityId"])]
    new_links = pd.DataFrame(
        {
            "linkId": "auto-" + auto["plannedSessionId"] + "-" + auto["activityId"],
            "athleteId": auto["athleteId"],
            "plannedSessionId": auto["plannedSessionId"],
            "activityId": auto["activityId"],
            "method": "auto",
            "date": auto["date"],
        }
    )
    in_scope = new_links["date"] >= new_links["athleteId"].map(scope)
    _replace_auto_links(stores, links, new_links[in_scope].drop(columns="date"), scope, planned)
    all_links = pd.concat(
        [manual[["plannedSessionId", "activityId"]], new_links[["plannedSessionId", "activityId"]]],
        ignore_index=True,
    )
    linked = all_links.merge(acts[["activityId", "load"]], on="activityId", how="left")
    actual = linked.groupby("plannedSessionId")["load"].sum()
    ids = linked.groupby("plannedSessionId")["activityId"].agg(lambda s: json.dumps(sorted(s)))
    plan = planned[planned["date"] >= planned["athleteId"].map(scope)]
    planned_load = plan["plannedLoad"].astype(float)
    actual_load = plan["plannedSessionId"].map(actual).fillna(0.0).astype(float)
    frame = pd.DataFrame(
        {
            "plannedSessionId": plan["plannedSessionId"],
            "athleteId": plan["athleteId"],
            "date": plan["date"],
            "plannedLoad": planned_load,
            "actualLoad": actual_load,
            "compliance": np.where(planned_load > 0, actual_load / planned_load, np.nan),
            "activityIds": plan["plannedSessionId"].map(lambda p: ids.get(p, "[]")),
        }
    )
    write_scoped(
        stores, "planned_metrics", to_frame_form("planned_metrics", frame, []), scope, "date"
    )


def _replace_auto_links(
    stores: Stores,
    links: pd.DataFrame,
    new_links: pd.DataFrame,
    scope: Mapping[str, str],
    planned: pd.DataFrame,
) -> None:
    dates = planned.set_index("plannedSessionId")["date"]
    old = links[(links["method"] == "auto")]
    old_dates = old["plannedSessionId"].map(dates).fillna("9999-12-31")
    stale = old[
        (old_dates >= old["athleteId"].map(scope).fillna("9999-12-31"))
        & ~old["linkId"].isin(new_links["linkId"])
    ]
    repo = stores.repository("links")
    for link_id in stale["linkId"]:
        repo.delete(link_id)
    if not new_links.empty:
        repo.upsert_frame(new_links)


def link_recompute_dates(stores: Stores, links: pd.DataFrame) -> dict[str, str]:
    """{athleteId: ISO date} from which links' athletes need their metrics again. A link has
    no date: it counts from the earlier of its planned session's date and its activity's
    start day, a day early (the athlete's local calendar); a link to neither changes nothing.
    The rows are looked up by key, so only the months holding them are read."""
    earliest: dict[str, date] = {}
    if links.empty:
        return {}
    plans = _by_key(stores, "planned_sessions", links["plannedSessionId"])
    activities = _by_key(stores, "activities", links["activityId"])
    for athlete, plan_id, activity_id in zip(
        links["athleteId"], links["plannedSessionId"], links["activityId"], strict=True
    ):
        plan, activity = plans.get(plan_id), activities.get(activity_id)
        for day in (plan and plan["date"], activity and activity["startTime"]):
            if day is not None:
                found = date.fromisoformat(str(day)[:10]) - timedelta(days=1)
                earliest[str(athlete)] = min(earliest.get(str(athlete), found), found)
    return {athlete: day.isoformat() for athlete, day in earliest.items()}


def _by_key(stores: Stores, table: str, ids: pd.Series) -> dict[str, dict[str, Any]]:
    """The stored rows of these ids (a one-column key), found through the table's key index."""
    repository = stores.repository(table)
    with repository.transaction() as unit:
        found = unit.fetch([(str(i),) for i in sorted(set(ids.dropna()))])
    return {str(key[0]): row for key, row in found.items()}
