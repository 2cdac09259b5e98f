"""A dataset as a file: export it, and import one a person uploads, previewed entry by entry
before anything is written. Applying takes a backup of the dataset's rows first (kept in SQL,
downloadable); imported entries become `user` rows, kept by bundled updates."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from storage.errors import NotFound, SeedDataError, ValidationError
from storage.json_values import check_nesting
from storage.seeds.bundle import DatasetSpec, parse_bundle
from storage.seeds.entries import checked_fields, spec_of
from storage.seeds.sync import LOCK_KEY, audit_row, db_now, rows_by_key
from storage.sql.database import Database
from storage.sql.schema import sql_table


def export_document(database: Database, dataset: str) -> dict[str, Any]:
    """Every entry of the dataset in the bundle's format (an upload takes it back)."""
    spec = spec_of(dataset)
    table = sql_table(spec.table)
    with database.transaction(table=spec.table) as connection:
        rows = connection.execute(sa.select(table).order_by(table.c[spec.key])).mappings().all()
    return {
        "dataset": dataset,
        "version": f"export {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "entries": [{spec.key: r[spec.key], **{n: r[n] for n in spec.fields}} for r in rows],
    }


def read_upload(dataset: str, raw: bytes, filename: str) -> dict[str, dict[str, Any]]:
    """The entries of an uploaded file, each checked as an edit would be; VALIDATION naming
    the file and what is wrong otherwise."""
    spec = spec_of(dataset)
    try:  # -sig: a file saved by an editor that starts it with a byte-order mark
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # "[[[…" too deep
        raise ValidationError(f"{filename} is not a JSON file: {error}", field="file") from None
    check_nesting(document, filename)
    if isinstance(document, dict) and document.get("dataset") not in (None, dataset):
        raise ValidationError(
            f"{filename} holds the dataset {document.get('dataset')!r}, not {dataset!r}",
            field="file",
        )
    try:
        bundle = parse_bundle(spec, document, filename)
    except SeedDataError as error:
        raise ValidationError(error.message, field="file") from None
    checked: dict[str, dict[str, Any]] = {}
    for entry_id, fields in bundle.entries.items():
        try:
            checked[entry_id] = checked_fields(spec, entry_id, fields)
        except ValidationError as error:
            raise ValidationError(
                f"{filename}, entry {entry_id!r}: {error.message}", field="file"
            ) from None
    return checked


def preview_upload(
    database: Database, dataset: str, entries: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """What applying would do: added entries, changed ones (field by field), unchanged."""
    spec = spec_of(dataset)
    current = _rows(database, spec)
    plan: dict[str, Any] = {"added": [], "changed": [], "unchanged": 0}
    for entry_id, fields in entries.items():
        row = current.get(entry_id)
        if row is None:
            plan["added"].append({"id": entry_id, **fields})
            continue
        before = {n: row[n] for n in spec.fields}
        if before == fields and row["active"]:
            plan["unchanged"] += 1
            continue
        differing = [n for n in spec.fields if before[n] != fields[n]]
        plan["changed"].append({"id": entry_id, "from": before, "to": fields, "fields": differing})
    return plan


def apply_upload(
    database: Database,
    dataset: str,
    entries: dict[str, dict[str, Any]],
    *,
    actor: str,
    filename: str,
) -> dict[str, Any]:
    """Back the dataset up, then write the uploaded entries as `user` rows, audited."""
    spec = spec_of(dataset)
    table, key = sql_table(spec.table), sql_table(spec.table).c[spec.key]
    backup = take_backup(database, dataset, actor=actor, reason=f"before importing {filename}")
    plan = preview_upload(database, dataset, entries)
    reason = f"imported from {filename}"
    with database.transaction(write=True, lock_key=LOCK_KEY, table=spec.table) as connection:
        now, audit = db_now(database), []
        current = rows_by_key(connection, spec)
        for entry in plan["added"]:
            fields = {n: entry[n] for n in spec.fields}
            connection.execute(sa.insert(table).values(
                {spec.key: entry["id"], **fields, "source": "user", "active": True,
                 "createdAt": now, "updatedAt": now, "version": 1}
            ))  # fmt: skip
            audit.append(
                audit_row(spec.name, entry["id"], "imported", None, fields, reason, actor, now)
            )
        for change in plan["changed"]:
            old = current[change["id"]]
            connection.execute(sa.update(table).where(key == change["id"]).values(
                {**change["to"], "source": "user", "active": True, "updatedAt": now,
                 "version": (old["version"] or 0) + 1}
            ))  # fmt: skip
            previous = {**change["from"], "source": old["source"], "active": old["active"]}
            audit.append(
                audit_row(
                    spec.name, change["id"], "imported", previous, change["to"], reason, actor, now
                )
            )
        if audit:
            connection.execute(sa.insert(sql_table("seed_audit")), audit)
    return {"backupId": backup, "added": len(plan["added"]), "changed": len(plan["changed"])}


def take_backup(database: Database, dataset: str, *, actor: str, reason: str) -> str:
    backup_id = uuid.uuid4().hex
    document = export_document(database, dataset)
    now = db_now(database)
    row = {
        "backupId": backup_id,
        "dataset": dataset,
        "takenAt": now,
        "takenBy": actor,
        "reason": reason,
        "document": document,
        "createdAt": now,
        "updatedAt": now,
        "version": 1,
    }
    with database.transaction(write=True, table="seed_backups") as connection:
        connection.execute(sa.insert(sql_table("seed_backups")).values(row))
    return backup_id


def list_backups(database: Database, dataset: str) -> list[dict[str, Any]]:
    table = sql_table("seed_backups")
    columns = [table.c.backupId, table.c.takenAt, table.c.takenBy, table.c.reason]
    query = sa.select(*columns).where(table.c.dataset == dataset).order_by(table.c.takenAt.desc())
    with database.transaction(table="seed_backups") as connection:
        return [dict(r) for r in connection.execute(query).mappings()]


def get_backup(database: Database, dataset: str, backup_id: str) -> dict[str, Any]:
    table = sql_table("seed_backups")
    query = sa.select(table.c.document).where(
        table.c.backupId == backup_id, table.c.dataset == dataset
    )
    with database.transaction(table="seed_backups") as connection:
        document = connection.execute(query).scalar()
    if document is None:
        raise NotFound(f"{dataset} has no backup {backup_id!r}", key=backup_id)
    return dict(document)


def _rows(database: Database, spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    with database.transaction(table=spec.table) as connection:
        return rows_by_key(connection, spec)
