"""Row jobs as plain functions: validated upserts into any table, and activity ingest."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

from storage.errors import ValidationError
from storage.frame_validation import frame_of_records
from storage.seeds.upserts import EDITABLE, upsert_entries
from storage.stores import Stores
from storage.tables import get_table
from storage.values import check_nesting
from tasks.metrics.links import link_recompute_dates

MAX_ROWS = 100_000
JOB = "upsert_rows"  # who changed a reference entry, in its audit row
# tables only their own job writes, so their invariants hold (a session has its JSON file)
WRITTEN_BY = {
    "training_sessions": "save_session or import_sessions",
    "session_exercises": "save_session or import_sessions",
    "session_sets": "save_session or import_sessions",
    "task_failures": "the workers, when a job fails",
    "seed_imports": "check_seed_updates",
    "seed_audit": "check_seed_updates",
    "seed_backups": "the web console, before it imports a dataset file",
    "recompute_pending": "the jobs whose changes need a metrics recompute",
    "coordination_marks": "the jobs that coordinate workers",
}
# table -> (column holding the athlete, column holding the date metrics change from)
METRIC_INPUTS = {
    "activities": ("athleteId", "startTime"),
    "thresholds": ("athleteId", "validFrom"),
    "planned_sessions": ("athleteId", "date"),
    "athlete": ("athleteId", None),
}


def _rows_argument(rows: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValidationError(f"{name} must be a list of objects", field=name)
    if len(rows) > MAX_ROWS:
        raise ValidationError(
            f"{name}: {len(rows):,} rows; send at most {MAX_ROWS:,} per job", field=name
        )
    check_nesting(rows, name)
    return rows


def recompute_dates(
    table: str, changed: pd.DataFrame, replaced: pd.DataFrame | None = None
) -> dict[str, str]:
    """{athleteId: ISO date} from which metrics must be recomputed after `changed` rows. The
    rows they `replaced` count too: an activity moved to a later day (or to another athlete)
    leaves its old day to recompute."""
    if table not in METRIC_INPUTS:
        return {}
    athlete_column, date_column = METRIC_INPUTS[table]
    columns = [athlete_column] if date_column is None else [athlete_column, date_column]
    rows = pd.concat(
        [frame[columns] for frame in (changed, replaced) if frame is not None and not frame.empty]
        or [pd.DataFrame(columns=columns)]
    )
    rows = rows[rows[athlete_column].notna()]
    if rows.empty:
        return {}
    if date_column is None:
        return {str(a): date.min.isoformat() for a in rows[athlete_column].unique()}
    # text, date or datetime cells (CSV or SQL backends) all start with the ISO day
    days = pd.to_datetime(
        rows[date_column].astype(str).str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
    )
    athletes = rows[athlete_column].astype(str).to_numpy()
    # a day early: the athlete's local calendar may put an activity on the previous UTC day
    earliest = (days - pd.Timedelta(days=1)).groupby(athletes).min()
    undated = set(athletes[days.isna().to_numpy()])  # no day known: recompute everything
    return {
        athlete: date.min.isoformat() if athlete in undated else day.date().isoformat()
        for athlete, day in earliest.items()
    }


def upsert_rows(stores: Stores, table: Any, rows: Any) -> dict[str, Any]:
    """Validated upsert into any table; returns the count and where metrics must recompute."""
    if not isinstance(table, str):
        raise ValidationError("table must be a table name", field="table")
    definition = get_table(table)
    if definition.name in WRITTEN_BY:
        raise ValidationError(
            f"table {definition.name} is written by {WRITTEN_BY[definition.name]}, "
            "not by upsert_rows",
            field="table",
        )
    rows = _rows_argument(rows, "rows")
    if not rows:
        return {"table": definition.name, "upserted": 0, "recomputeFrom": {}}
    _check_versions(definition.name, rows)
    if definition.name in EDITABLE:  # user rows, audited, under the seed updates' lock
        upsert_entries(stores.database, definition.name, rows, actor=JOB)
        return {"table": definition.name, "upserted": len(rows), "recomputeFrom": {}}
    repository = stores.repository(definition.name)
    if any(row.get("version") is not None for row in rows):
        changed_rows, replaced_rows = repository.upsert_checked(rows)
        changed, replaced = pd.DataFrame(changed_rows), pd.DataFrame(replaced_rows)
    else:
        changed, replaced = repository.upsert_frame_changes(frame_of_records(definition, rows))
    if definition.name == "links":  # planned_metrics count linked activities' loads
        since = link_recompute_dates(stores, pd.concat([changed, replaced], ignore_index=True))
    else:
        since = recompute_dates(definition.name, changed, replaced)
    return {"table": definition.name, "upserted": len(rows), "recomputeFrom": since}


def _check_versions(table: str, rows: list[dict[str, Any]]) -> None:
    """A row's `version` is the one its sender read: a whole number from 1 (or left out)."""
    for number, row in enumerate(rows):
        version = row.get("version")
        if version is not None and (type(version) is not int or version < 1):
            raise ValidationError(
                f"{table} row {number}: version must be the whole number from 1 that the row "
                f"had when read, not {str(version)[:40]!r}",
                table=table,
                field="version",
            )


def ingest_activities(stores: Stores, activities: Any) -> dict[str, Any]:
    result = upsert_rows(stores, "activities", _rows_argument(activities, "activities"))
    return {"upserted": result["upserted"], "recomputeFrom": result["recomputeFrom"]}


def day_before(day: date) -> date:
    return day - timedelta(days=1)
