"""Reference-data entries as people manage them: a filtered page of a dataset, one entry
with its history, an edit with a reason (the entry becomes a `user` row, kept by bundled
updates) and the restore of an entry's factory value. Every change writes an audit row
naming who made it and why."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from storage.errors import NotFound, ValidationError
from storage.seeds.bundle import DATASETS, DEFAULT_PACKAGE, DatasetSpec, load_bundle
from storage.seeds.sync import LOCK_KEY, audit_row, db_now
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.tables import get_table
from storage.values import validate_row

PER_PAGE = 50
MAX_REASON = 1000
MUSCLE_GROUPS = (
    "abdominals", "adductors", "biceps", "brachialis", "calves", "chest", "core", "forearms",
    "front delts", "glutes", "hamstrings", "hip flexors", "lats", "lower back", "obliques",
    "quadriceps", "rear delts", "rotator cuff", "shoulders", "side delts", "tibialis anterior",
    "trapezius", "triceps", "upper back", "upper chest",
)  # fmt: skip
SPECS = {spec.name: spec for spec in DATASETS}


@dataclass(frozen=True)
class EntryPage:
    entries: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def spec_of(dataset: str) -> DatasetSpec:
    try:
        return SPECS[dataset]
    except KeyError:
        raise NotFound(f"there is no dataset {dataset!r}", field="dataset") from None


def list_entries(
    database: Database,
    dataset: str,
    *,
    search: str = "",
    source: str | None = None,
    muscle: str | None = None,
    active: bool | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> EntryPage:
    """One page of a dataset's entries by name, filtered in SQL (name search, source, a
    muscle group of the catalog, active or not)."""
    spec = spec_of(dataset)
    table = sql_table(spec.table)
    conditions: list[sa.ColumnElement[bool]] = []
    if search.strip():
        pattern = "%" + search.strip().lower().replace("\\", "\\\\").replace("%", "\\%") + "%"
        conditions.append(sa.func.lower(table.c.name).like(pattern.replace("_", "\\_"), "\\"))
    if source:
        conditions.append(table.c.source == source)
    if muscle and "targetMuscleGroups" in table.c:
        check_muscle_groups([muscle])
        conditions.append(sa.cast(table.c.targetMuscleGroups, sa.Text).like(f'%"{muscle}"%'))
    if active is not None:
        conditions.append(table.c.active.is_(active))
    with database.transaction(table=spec.table) as connection:
        total = connection.execute(
            sa.select(sa.func.count()).select_from(table).where(*conditions)
        ).scalar_one()
        pages = max(1, math.ceil(total / per_page))
        page = min(max(page, 1), pages)
        query = (
            sa.select(table)
            .where(*conditions)
            .order_by(sa.func.lower(table.c.name), table.c[spec.key])
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        entries = [dict(r) for r in connection.execute(query).mappings()]
    return EntryPage(entries, total, page, pages)


def get_entry(database: Database, dataset: str, entry_id: str) -> dict[str, Any]:
    spec = spec_of(dataset)
    table = sql_table(spec.table)
    with database.transaction(table=spec.table) as connection:
        row = connection.execute(sa.select(table).where(table.c[spec.key] == entry_id)).first()
    if row is None:
        raise NotFound(f"{dataset} has no entry {entry_id!r}", key=entry_id)
    return dict(row._mapping)


def entry_history(database: Database, dataset: str, entry_id: str) -> list[dict[str, Any]]:
    """Every audit row of the entry, newest first."""
    audit = sql_table("seed_audit")
    query = (
        sa.select(audit)
        .where(audit.c.dataset == dataset, audit.c.entryId == entry_id)
        .order_by(audit.c.changedAt.desc(), audit.c.auditId)
    )
    with database.transaction(table="seed_audit") as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def check_muscle_groups(groups: Any) -> list[str]:
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValidationError(
            "targetMuscleGroups must be a list of muscle groups", field="targetMuscleGroups"
        )
    unknown = [g for g in groups if g not in MUSCLE_GROUPS]
    if unknown:
        raise ValidationError(
            f"{unknown[0]!r} is not a muscle group (known: {', '.join(MUSCLE_GROUPS)})",
            field="targetMuscleGroups",
        )
    return groups


def checked_fields(spec: DatasetSpec, entry_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's data fields checked as the table defines them (and its muscle groups)."""
    unknown = set(fields) - set(spec.fields)
    if unknown:
        raise ValidationError(
            f"{spec.name} has no field {sorted(unknown)[0]!r}", field=sorted(unknown)[0]
        )
    if "targetMuscleGroups" in fields and fields["targetMuscleGroups"] is not None:
        check_muscle_groups(fields["targetMuscleGroups"])
    row = validate_row(get_table(spec.table), {spec.key: entry_id, **fields}, partial=True)
    return {name: row[name] for name in fields}


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationError("a reason is required for every change", field="reason")
    if len(text) > MAX_REASON:
        raise ValidationError(f"the reason is longer than {MAX_REASON} characters", field="reason")
    return text


def edit_entry(
    database: Database,
    dataset: str,
    entry_id: str,
    changes: Mapping[str, Any],
    *,
    reason: str,
    actor: str,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change an entry's fields (and whether it is active); it becomes a `user` row. Nothing
    changed writes nothing."""
    spec = spec_of(dataset)
    why = _reason(reason)
    clean = checked_fields(spec, entry_id, changes)
    return _change(database, spec, entry_id, clean, active, "user", "edited", why, actor)


def restore_factory(
    database: Database, dataset: str, entry_id: str, *, actor: str, package: str = DEFAULT_PACKAGE
) -> dict[str, Any]:
    """The entry's bundled value, active again and a `factory` row (bundled updates follow it)."""
    spec = spec_of(dataset)
    bundled = load_bundle(spec, package).entries.get(entry_id)
    if bundled is None:
        raise ValidationError(
            f"{entry_id!r} is not in the bundled {dataset}: it has no factory value", key=entry_id
        )
    return _change(
        database,
        spec,
        entry_id,
        bundled,
        True,
        "factory",
        "restored",
        "restore factory value",
        actor,
    )


def _change(
    database: Database,
    spec: DatasetSpec,
    entry_id: str,
    fields: Mapping[str, Any],
    active: bool | None,
    source: str,
    action: str,
    reason: str,
    actor: str,
) -> dict[str, Any]:
    table = sql_table(spec.table)
    key = table.c[spec.key]
    with database.transaction(write=True, lock_key=LOCK_KEY, table=spec.table) as connection:
        found = connection.execute(sa.select(table).where(key == entry_id)).first()
        if found is None:
            raise NotFound(f"{spec.name} has no entry {entry_id!r}", key=entry_id)
        old = dict(found._mapping)
        new = {
            **{n: old[n] for n in spec.fields},
            **fields,
            "active": old["active"] if active is None else active,
        }
        previous = {
            **{n: old[n] for n in spec.fields},
            "active": old["active"],
            "source": old["source"],
        }
        if {**new, "source": source} == previous:
            return old
        now = db_now(database)
        values = {**new, "source": source, "updatedAt": now, "version": (old["version"] or 0) + 1}
        connection.execute(sa.update(table).where(key == entry_id).values(values))
        record = audit_row(
            spec.name, entry_id, action, previous, {**new, "source": source}, reason, actor, now
        )
        connection.execute(sa.insert(sql_table("seed_audit")).values(record))
        return {**old, **values}
