"""Coalesced recompute requests: a burst of saves for one athlete queues one recompute, from
the earliest changed date. The marker file is named by a hash of the athlete id (ids never
reach a path); a marker older than twice the visibility timeout is taken as a lost job."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date
from pathlib import Path

from storage.atomic import write_atomic
from storage.csv.locks import acquire_lock
from storage.stores import Stores


def _paths(stores: Stores, athlete: str) -> tuple[Path, Path]:
    folder = stores.settings.data_dir / ".pending-recompute"
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(athlete.encode()).hexdigest()[:32]
    return folder / ".lock", folder / f"{name}.json"


def _read(path: Path) -> tuple[date | None, float] | None:
    try:
        data = json.loads(path.read_text())
        since = date.fromisoformat(data["since"]) if data["since"] else None
        return since, float(data["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_pending(stores: Stores, athlete: str, since: date | None) -> bool:
    """Note that `athlete` needs a recompute from `since` (None = full). True when the caller
    must queue the job: none is pending, or the pending one looks lost."""
    lock, path = _paths(stores, athlete)
    with acquire_lock(lock, exclusive=True, timeout=stores.settings.lock_timeout):
        current = _read(path)
        if current is None:
            earliest, stamp = since, time.time()
        else:
            earliest = None if since is None or current[0] is None else min(since, current[0])
            stamp = current[1]
        lost = current is not None and time.time() - stamp > 2 * stores.settings.visibility_timeout
        if lost:
            stamp = time.time()
        write_atomic(
            path,
            json.dumps(
                {
                    "since": earliest.isoformat() if earliest else None,
                    "at": stamp,
                    "athleteId": athlete,
                }
            ).encode(),
        )
        return current is None or lost


def take_pending(stores: Stores, athlete: str) -> tuple[bool, date | None]:
    """Remove the athlete's marker: (True, its date) if there was one, else (False, None)."""
    lock, path = _paths(stores, athlete)
    with acquire_lock(lock, exclusive=True, timeout=stores.settings.lock_timeout):
        current = _read(path)
        path.unlink(missing_ok=True)
        return (current is not None, current[0] if current else None)
