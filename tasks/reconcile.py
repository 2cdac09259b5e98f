"""Reconciling SQL with the session JSON files: what a crash, a restore or a hand left apart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from storage.errors import PersistenceError
from storage.export_folder import check_export_folder_present
from storage.file_reads import read_bounded
from storage.sessions.exports import (
    OWNER_READ_LIMIT,
    contained,
    export_name,
    export_owner,
    export_path,
    read_export,
    remove_export,
    write_export,
)
from storage.sessions.store import StoredSession
from storage.stores import Stores
from tasks.sessions import iso_dates, note_recompute, store_session


def reconcile_exports(stores: Stores) -> dict[str, Any]:
    """Repair divergence: missing or stale files are rewritten from SQL; files with no SQL row
    are imported (the JSON files are authoritative for recovery); a second file of a session
    (left under its old name when its date changed) is imported if newer than the SQL row,
    else removed. A session that cannot be repaired is reported as skipped, with why, and the
    others are still checked. `recomputeFrom` names the athletes whose metrics imported files
    changed."""
    folder = stores.settings.export_dir
    folder.mkdir(parents=True, exist_ok=True)
    check_export_folder_present(stores)  # never repair into a folder only this host sees
    repaired: list[dict[str, str]] = []
    known: set[str] = set()
    updated: dict[str, datetime] = {}
    pending: dict[str, date] = {}
    checked = 0
    for stored in stores.sessions.iterate():
        checked += 1
        updated[stored.session_id] = stored.updated_at
        try:
            action = _repair(stores, folder, stored, known)
        except PersistenceError as error:
            if error.transient:
                raise
            action = f"skipped: {error.message}"
        if action:
            repaired.append({"sessionId": stored.session_id, "action": action})
    for path in sorted(folder.glob("training_session_*.json")):
        if path.name in known:
            continue
        checked += 1
        try:
            repaired.append(_adopt(stores, folder, path, updated, pending))
        except PersistenceError as error:
            if error.transient:
                raise
            repaired.append({"sessionId": path.name, "action": f"skipped: {error.message}"})
    return {"checked": checked, "repaired": repaired, "recomputeFrom": iso_dates(pending)}


def _repair(stores: Stores, folder: Path, stored: StoredSession, known: set[str]) -> str | None:
    """Rewrite the session's file if it is missing or stale: looked at first without a lock,
    then again, and written, holding the session (a save meanwhile may have moved it)."""
    session = stores.sessions.load(stored.session_id)
    if session is None:
        return None  # deleted meanwhile
    known.add(export_name(session))
    path = export_path(folder, session)
    if _file_state(path, session.document()) is None:
        return None
    with stores.sessions.holding(stored.session_id, str(path)):
        session = stores.sessions.load(stored.session_id)
        if session is None or export_path(folder, session) != path:
            return None  # deleted or moved by a save meanwhile, which wrote its file
        action = _file_state(path, session.document())
        if action:
            write_export(folder, session, path=path)
        return action


def _adopt(
    stores: Stores,
    folder: Path,
    path: Path,
    updated: dict[str, datetime],
    pending: dict[str, date],
) -> dict[str, str]:
    """A file no SQL row names: removed if it is an older copy of a known session, else
    imported."""
    owner = export_owner(path)
    if owner in updated and _modified_at(path) <= updated[owner]:
        with stores.sessions.holding(owner, str(path)):
            remove_export(path, owner)
        return {"sessionId": owner, "action": f"removed older copy {path.name}"}
    saved = store_session(stores, read_export(contained(folder, path)))
    note_recompute(pending, saved)
    return {"sessionId": saved.session_id, "action": "imported"}


def _modified_at(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _file_state(path: Path, expected: dict[str, Any]) -> str | None:
    """None when the file holds exactly the stored document; else the repair it needs."""
    if not path.exists():
        return "recreated"
    try:
        return None if json.loads(read_bounded(path, OWNER_READ_LIMIT)) == expected else "rewritten"
    except (PersistenceError, ValueError, RecursionError):
        return "rewritten"
