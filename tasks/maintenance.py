"""Maintenance jobs as plain functions: schema migrations (SQL and CSV headers)."""

from __future__ import annotations

from typing import Any

from storage import migrations
from storage.errors import ValidationError
from storage.placement import claim_table_placement
from storage.seeds.sync import ensure_imported, sync_seeds
from storage.stores import Stores
from storage.tables import DEFINITIONS


def apply_migrations(stores: Stores) -> dict[str, Any]:
    """SQL to head (serialised between runners), then every CSV file's header to its
    definition (missing columns added in place, every value and unknown column kept)."""
    sql = migrations.upgrade(stores.database)
    differ = claim_table_placement(stores)  # what every worker on this database must use
    csv: dict[str, list[str]] = {}
    for table in DEFINITIONS:
        if stores.backend_of(table.name) == "csv":
            added = stores.csv.migrate_headers(table)
            if added:
                csv[table.name] = added
    result: dict[str, Any] = {"sql": sql, "csv": csv}
    if differ:  # the schema is upgraded all the same; workers keep the registered placement
        result["placementDiffers"] = differ
    return result


def check_seed_updates(
    stores: Stores, apply: Any = False, actor: str = "trainlog"
) -> dict[str, Any]:
    """Compare the bundled datasets with SQL: preview, or apply (see storage.seeds.sync)."""
    if not isinstance(apply, bool):
        raise ValidationError("apply must be true or false", field="apply")
    ensure_imported(stores.database)  # first use imports; then compare
    return sync_seeds(stores.database, apply=apply, actor=actor)
