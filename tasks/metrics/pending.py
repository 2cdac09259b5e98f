"""Coalesced recompute requests. A change marks its athlete pending from a date (the earliest
wins); the first mark of a burst schedules one flush job that recomputes every pending athlete
together, so a stream of saves costs a few multi-athlete recomputes instead of one each.
Marker files are named by a hash of the athlete id (ids never reach a path); a flush that
looks lost (older than twice the visibility timeout) is scheduled again."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from storage.atomic import write_atomic
from storage.locks import acquire_lock
from storage.stores import Stores

FLUSH_MARKER = ".flush-scheduled"


def _folder(stores: Stores) -> Path:
    folder = stores.settings.data_dir / ".pending-recompute"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _marker(folder: Path, athlete: str) -> Path:
    return folder / f"{hashlib.sha256(athlete.encode()).hexdigest()[:32]}.json"


def _read(path: Path) -> tuple[str, date | None, float] | None:
    try:
        data = json.loads(path.read_text())
        since = date.fromisoformat(data["since"]) if data["since"] else None
        return str(data["athleteId"]), since, float(data["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _covers(current: tuple[str, date | None, float] | None, since: date | None) -> bool:
    """Whether a marker already asks for a recompute from `since` or earlier."""
    return current is not None and (
        current[1] is None or (since is not None and current[1] <= since)
    )


def _merge(path: Path, athlete: str, since: date | None) -> None:
    """Mark `athlete` from `since`, keeping an earlier pending date (None = full recompute)."""
    current = _read(path)
    if _covers(current, since):
        return  # already pending from this date or earlier: nothing to write
    stamp = current[2] if current is not None else time.time()  # when the burst began
    payload = {"athleteId": athlete, "since": since.isoformat() if since else None, "at": stamp}
    write_atomic(path, json.dumps(payload).encode())


def _flush_scheduled(folder: Path, stores: Stores) -> bool:
    """A flush job is scheduled and not old enough to look lost."""
    try:
        age = time.time() - (folder / FLUSH_MARKER).stat().st_mtime
    except FileNotFoundError:
        return False
    return age <= 2 * stores.settings.visibility_timeout


def mark_pending(stores: Stores, athlete: str, since: date | None) -> bool:
    """Note that `athlete` needs a recompute from `since`. True when the caller must schedule
    the flush job: none is scheduled, or the scheduled one looks lost.

    A mark already covered, with a live flush scheduled, returns without the lock, so a stream
    of saves does not queue on it. That is safe because the change was committed before this
    call: a flush that takes the marker after this read reads the data after taking it."""
    folder = _folder(stores)
    marker = _marker(folder, athlete)
    if _covers(_read(marker), since) and _flush_scheduled(folder, stores):
        return False
    with acquire_lock(folder / ".lock", exclusive=True, timeout=stores.settings.lock_timeout):
        _merge(marker, athlete, since)
        if _flush_scheduled(folder, stores):
            return False
        write_atomic(folder / FLUSH_MARKER, str(time.time()).encode())
        return True


def forget_flush(stores: Stores) -> None:
    """Undo the flush mark of a `mark_pending` whose flush job could not be sent, so the next
    mark (the job run again) schedules one; the athletes' markers stay."""
    folder = _folder(stores)
    with acquire_lock(folder / ".lock", exclusive=True, timeout=stores.settings.lock_timeout):
        (folder / FLUSH_MARKER).unlink(missing_ok=True)


def take_pending(stores: Stores, athlete: str) -> tuple[bool, date | None]:
    """Remove one athlete's marker: (True, its date) if there was one, else (False, None)."""
    folder = _folder(stores)
    with acquire_lock(folder / ".lock", exclusive=True, timeout=stores.settings.lock_timeout):
        path = _marker(folder, athlete)
        current = _read(path)
        path.unlink(missing_ok=True)
        return (current is not None, current[1] if current else None)


def take_all_pending(stores: Stores) -> dict[str, date | None]:
    """Every pending athlete with its date, removing the markers and the flush mark: a change
    from now on schedules the next flush."""
    folder = _folder(stores)
    with acquire_lock(folder / ".lock", exclusive=True, timeout=stores.settings.lock_timeout):
        (folder / FLUSH_MARKER).unlink(missing_ok=True)
        taken: dict[str, date | None] = {}
        for path in sorted(folder.glob("*.json")):
            current = _read(path)
            path.unlink(missing_ok=True)
            if current is not None:
                taken[current[0]] = current[1]
        return taken


def restore_pending(stores: Stores, since: Mapping[str, date | None]) -> None:
    """Put back what a failed flush took, so its retry (or the next one) recomputes it."""
    folder = _folder(stores)
    with acquire_lock(folder / ".lock", exclusive=True, timeout=stores.settings.lock_timeout):
        for athlete, day in since.items():
            _merge(_marker(folder, athlete), athlete, day)
