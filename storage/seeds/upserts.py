"""Reference entries sent whole by a job (`upsert_rows` on the exercise catalog or the session
templates): each becomes a `user` row, kept by bundled updates, under the same lock as those
updates and the web console's edits, and every change writes an audit row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from storage.repositories.stamps import check_version
from storage.seeds.bundle import DATASETS, DatasetSpec
from storage.seeds.sync import LOCK_KEY, audit_row, db_now
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.tables import get_table
from storage.values import validate_row

EDITABLE = {spec.table: spec for spec in DATASETS}


def upsert_entries(
    database: Database, table_name: str, rows: Sequence[Mapping[str, Any]], *, actor: str
) -> int:
    """Insert or replace each entry (fields left out are emptied, as any upsert does); one
    that does not say `active` is active when new and keeps its state otherwise. A `version`
    an entry names is checked (CONFLICT, nothing written, when stale). Returns how many
    entries changed; an entry sent as it is stored writes nothing."""
    spec = EDITABLE[table_name]
    sent = [(_entry(spec, row), row.get("version")) for row in rows]
    table = sql_table(spec.table)
    key = table.c[spec.key]
    changed = 0
    with database.transaction(write=True, lock_key=LOCK_KEY, table=spec.table) as connection:
        ids = list(dict.fromkeys(entry[spec.key] for entry, _ in sent))
        found = {
            r[spec.key]: dict(r)
            for r in connection.execute(sa.select(table).where(key.in_(ids))).mappings()
        }
        now = db_now(database)
        for entry, expected in sent:
            entry_id = entry[spec.key]
            old = found.get(entry_id)
            fields = {name: entry.get(name) for name in spec.fields}
            state = entry.get("active")
            state = state if state is not None else (old["active"] if old else True)
            new = {**fields, "active": bool(state), "source": "user"}
            previous = None if old is None else {n: old[n] for n in new}
            if new == previous:  # as stored already (a job's retry): no conflict
                continue
            check_version(spec.table, entry_id, old, expected)
            version = (old["version"] or 0) + 1 if old else 1
            values = {**new, "updatedAt": now, "version": version}
            if old is None:
                connection.execute(
                    sa.insert(table).values({spec.key: entry_id, **values, "createdAt": now})
                )
            else:
                connection.execute(sa.update(table).where(key == entry_id).values(values))
            action = "added" if old is None else "edited"
            reason = "sent by the upsert_rows job"
            record = audit_row(spec.name, entry_id, action, previous, new, reason, actor, now)
            connection.execute(sa.insert(sql_table("seed_audit")).values(record))
            found[entry_id] = {**(old or {}), spec.key: entry_id, **values}
            changed += 1
    return changed


def _entry(spec: DatasetSpec, row: Mapping[str, Any]) -> dict[str, Any]:
    """The entry checked as its table defines it (the web console's narrower muscle-group
    list is its own: a producer may name groups of its own, as before)."""
    data = {n: v for n, v in row.items() if n != "source"}  # a job's entry is a user's
    return validate_row(get_table(spec.table), data)
