"""Compare bundled datasets with SQL and preview, apply or reset. Factory rows follow the
bundle; rows a user edited (source "user") are kept; removed entries are deactivated. Every
change writes an audit row; a dataset with nothing to change writes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from storage.seeds.bundle import DATASETS, DEFAULT_PACKAGE, Bundle, DatasetSpec, load_bundle
from storage.sql.database import Database
from storage.sql.schema import sql_table

LOCK_KEY = "trainlog:seeds"


def db_now(database: Database) -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if database.dialect == "sqlite" else now


def rows_by_key(connection: sa.Connection, spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """Every row of a dataset's table, by entry id."""
    table = sql_table(spec.table)
    return {r[spec.key]: dict(r) for r in connection.execute(sa.select(table)).mappings()}


def _plan(bundle: Bundle, rows: dict[str, dict[str, Any]], reset: bool) -> dict[str, list[Any]]:
    fields = bundle.spec.fields
    plan: dict[str, list[Any]] = {"added": [], "changed": [], "removed": [], "kept": []}
    for entry_id, data in bundle.entries.items():
        row = rows.get(entry_id)
        if row is None:
            plan["added"].append({"id": entry_id, **data})
            continue
        current = {name: row[name] for name in fields}
        differs = current != data or not row["active"]
        if row["source"] == "user" and not reset:
            if differs:
                plan["kept"].append(entry_id)
        elif differs or row["source"] != "factory":
            plan["changed"].append({"id": entry_id, "from": current, "to": data})
    plan["removed"] = [
        {"id": entry_id, **{n: row[n] for n in fields}}
        for entry_id, row in sorted(rows.items())
        if entry_id not in bundle.entries
        and row["active"]
        and (row["source"] == "factory" or reset)
    ]
    return plan


def sync_seeds(
    database: Database,
    *,
    apply: bool,
    reset: bool = False,
    package: str = DEFAULT_PACKAGE,
    actor: str = "trainlog",
    only: str | None = None,
) -> dict[str, Any]:
    """Preview (apply=False) or apply the bundled datasets (`only`: that one); reset
    restores factory rows."""
    specs = [spec for spec in DATASETS if only is None or spec.name == only]
    bundles = [load_bundle(spec, package) for spec in specs]  # all valid before any write
    report: dict[str, Any] = {}
    with database.transaction(write=True, lock_key=LOCK_KEY, table="seed_imports") as connection:
        for bundle in bundles:
            rows = rows_by_key(connection, bundle.spec)
            plan = _plan(bundle, rows, reset)
            changes = bool(plan["added"] or plan["changed"] or plan["removed"])
            if apply:
                reason = "reset to factory" if reset else f"bundled update {bundle.version}"
                _write(connection, database, bundle, plan, rows, reason, actor)
                _record_import(connection, database, bundle, changes)
            report[bundle.spec.name] = {**plan, "applied": apply and changes}
    return report


def _write(
    connection: sa.Connection,
    database: Database,
    bundle: Bundle,
    plan: dict[str, list[Any]],
    rows: dict[str, dict[str, Any]],
    reason: str,
    actor: str,
) -> None:
    spec, table, now = bundle.spec, sql_table(bundle.spec.table), db_now(database)
    key = table.c[spec.key]
    audit: list[dict[str, Any]] = []
    for entry in plan["added"]:
        data = {name: entry[name] for name in spec.fields}
        connection.execute(
            sa.insert(table).values(
                {
                    spec.key: entry["id"],
                    **data,
                    "source": "factory",
                    "active": True,
                    "createdAt": now,
                    "updatedAt": now,
                    "version": 1,
                }
            )
        )
        audit.append(audit_row(spec.name, entry["id"], "added", None, data, reason, actor, now))
    for change in plan["changed"]:
        old = rows[change["id"]]
        connection.execute(
            sa.update(table)
            .where(key == change["id"])
            .values(
                {
                    **change["to"],
                    "source": "factory",
                    "active": True,
                    "updatedAt": now,
                    "version": (old["version"] or 0) + 1,
                }
            )
        )
        previous = {**change["from"], "source": old["source"], "active": old["active"]}
        audit.append(
            audit_row(
                spec.name, change["id"], "updated", previous, change["to"], reason, actor, now
            )
        )
    for entry in plan["removed"]:
        old = rows[entry["id"]]
        connection.execute(
            sa.update(table)
            .where(key == entry["id"])
            .values(active=False, updatedAt=now, version=(old["version"] or 0) + 1)
        )
        audit.append(
            audit_row(
                spec.name,
                entry["id"],
                "deactivated",
                {**{n: old[n] for n in spec.fields}, "active": True},
                {"active": False},
                reason,
                actor,
                now,
            )
        )
    if audit:
        connection.execute(sa.insert(sql_table("seed_audit")), audit)


def audit_row(
    dataset: str,
    entry_id: str,
    action: str,
    previous: Any,
    new: Any,
    reason: str,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "auditId": uuid.uuid4().hex,
        "dataset": dataset,
        "entryId": entry_id,
        "action": action,
        "previousValue": previous,
        "newValue": new,
        "reason": reason,
        "changedAt": now,
        "changedBy": actor,
        "createdAt": now,
        "updatedAt": now,
        "version": 1,
    }


def _record_import(
    connection: sa.Connection, database: Database, bundle: Bundle, changed: bool
) -> None:
    table, now = sql_table("seed_imports"), db_now(database)
    row = (
        connection.execute(sa.select(table).where(table.c.dataset == bundle.spec.name))
        .mappings()
        .first()
    )
    values = {
        "contentHash": bundle.content_hash,
        "datasetVersion": bundle.version,
        "entries": len(bundle.entries),
        "importedAt": now,
        "updatedAt": now,
    }
    if row is None:
        connection.execute(
            sa.insert(table).values(dataset=bundle.spec.name, createdAt=now, version=1, **values)
        )
    elif changed or row["contentHash"] != bundle.content_hash:
        connection.execute(
            sa.update(table)
            .where(table.c.dataset == bundle.spec.name)
            .values(version=(row["version"] or 0) + 1, **values)
        )


def import_status(database: Database) -> dict[str, dict[str, Any]]:
    table = sql_table("seed_imports")
    with database.transaction(table="seed_imports") as connection:
        return {r["dataset"]: dict(r) for r in connection.execute(sa.select(table)).mappings()}


def ensure_imported(database: Database, package: str = DEFAULT_PACKAGE) -> None:
    """First use: import every dataset that was never imported."""
    if len(import_status(database)) < len(DATASETS):
        sync_seeds(database, apply=True, package=package, actor="first use")


def muscle_groups(database: Database) -> dict[str, list[str]]:
    """Active catalog entries: lower-cased exercise name -> target muscle groups."""
    ensure_imported(database)
    table = sql_table("exercise_catalog")
    with database.transaction(table="exercise_catalog") as connection:
        rows = connection.execute(
            sa.select(table.c.name, table.c.targetMuscleGroups).where(table.c.active.is_(True))
        ).all()
    return {str(name).strip().lower(): list(groups or []) for name, groups in rows}
