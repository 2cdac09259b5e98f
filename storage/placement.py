"""Every worker on one database places each table on the same backend. A worker started
without the fleet's `TRAINLOG_TABLE_BACKENDS` kept activities in its own CSV folder while the
others wrote them to PostgreSQL: its rows were invisible to every other host and to the
metrics they computed, and every job reported success. The deploy step (`trainlog migrate
upgrade`) registers the placement in SQL unless one is, else the first worker does; a worker
on PostgreSQL that places a table otherwise refuses to start, naming the tables. One SQLite
host follows a changed setting, with a warning."""

from __future__ import annotations

import json
import logging
import socket

from storage.errors import ConfigurationError
from storage.stores import Stores
from storage.tables import TABLES

log = logging.getLogger(__name__)
MARK = "table-placement"


def table_placement(stores: Stores) -> dict[str, str]:
    """Table -> "csv" or "sql", as this process's settings place it."""
    return {name: stores.backend_of(name) for name in sorted(TABLES)}


def register_table_placement(stores: Stores) -> dict[str, str]:
    """Make this placement the one every worker must use (`trainlog migrate
    register-placement`, after moving tables on purpose)."""
    placement = table_placement(stores)
    stores.coordination.write_mark(MARK, _registration(placement))
    return placement


def claim_table_placement(stores: Stores) -> list[str]:
    """Register this placement unless one is; the tables it places otherwise than the one
    registered (none when they agree). Tables one side does not know (a newer version's)
    are not compared."""
    placement = table_placement(stores)
    registered = json.loads(stores.coordination.claim_mark(MARK, _registration(placement)))
    theirs: dict[str, str] = registered.get("placement", {})
    return [
        f"{t} ({placement[t]} here, {theirs[t]} there)"
        for t in placement
        if t in theirs and theirs[t] != placement[t]
    ]


def check_table_placement(stores: Stores) -> None:
    """CONFIGURATION unless every table is where the registered placement puts it (the
    first worker on a database registers its own)."""
    differ = claim_table_placement(stores)
    if not differ:
        return
    if stores.database.dialect == "sqlite":
        log.warning("table placement changed (%s): adopted", ", ".join(differ))
        register_table_placement(stores)
        return
    raise ConfigurationError(
        f"this worker on {socket.gethostname()} places tables otherwise than the other "
        f"workers: {', '.join(differ[:6])}. Give every worker the same "
        "TRAINLOG_TABLE_BACKENDS; after moving tables on purpose, run `trainlog migrate "
        "register-placement` with the new setting",
        field="table_backends",
    )


def _registration(placement: dict[str, str]) -> str:
    return json.dumps({"placement": placement, "host": socket.gethostname()}, sort_keys=True)
