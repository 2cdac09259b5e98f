"""Session jobs as plain functions: save, export, import a folder, reconcile SQL with JSON files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from storage.errors import NotFound, PersistenceError, ValidationError
from storage.export_folder import check_export_folder_present
from storage.repositories.base import Repository
from storage.sessions.exports import (
    check_owner,
    contained,
    export_path,
    fill_muscle_groups,
    read_export,
    remove_export,
    write_export,
)
from storage.sessions.model import MAX_SESSION_SECONDS, TrainingSession, parse_session
from storage.sessions.store import SaveOutcome
from storage.sql.prepared import FetchedRow
from storage.stores import Stores

log = logging.getLogger(__name__)
Progress = Callable[[int], object]


@dataclass(frozen=True)
class SavedSession:
    session_id: str
    json_path: str
    activity_id: str
    recompute_from: dict[str, date]  # athlete -> first day whose metrics the save changed
    changed: bool
    # athlete -> its row of Coordination.marks_read, read as the save freed its locks
    marks: dict[str, FetchedRow] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "jsonPath": self.json_path,
            "activityId": self.activity_id,
        }


def session_activity_id(session: TrainingSession) -> str:
    return f"session-{session.session_id}"


def session_activity(session: TrainingSession) -> dict[str, Any]:
    """A saved session counts as a strength activity: duration, mean working-set RPE, volume.
    With no durationSec the duration is estimated as 45 s per set plus the recorded rests,
    at most a day (what durationSec may say): a longer one would be refused as an activity
    by every recompute that writes it."""
    working = [s for e in session.exercises for s in e.workingSets]
    sets = len(working) + sum(len(e.warmupSets) for e in session.exercises)
    rpes = [s.rpe for s in working if s.rpe is not None]
    rest = sum((s.actualRestMinutes or 0) * 60 for s in working)
    return {
        "activityId": session_activity_id(session),
        "athleteId": session.userId,
        "startTime": session.date,
        "sport": "strength",
        "durationSec": session.durationSec
        if session.durationSec is not None
        else float(min(sets * 45 + rest, MAX_SESSION_SECONDS)),
        "rpe": sum(rpes) / len(rpes) if rpes else None,
        "volumeKg": float(sum(s.weightKg * s.repCount.full for s in working)),
        "name": session.focus,
        "source": "session",
        "sessionId": session.session_id,
    }


def store_session(
    stores: Stores, session: TrainingSession, *, read_marks: bool = False
) -> SavedSession:
    """The SQL rows (idempotent by content), then the JSON file, holding the session and its
    file name throughout: a session refused because another one's file has its name
    (CONFLICT) writes nothing; a file that fails after the rows (a full disk: UNAVAILABLE)
    is written by the retry. The session's activity row is left to the metrics recompute
    the save schedules (`sync_session_activities`): one write for every session saved
    meanwhile. `read_marks`: read the athlete's pending marks as the locks are freed, for
    the caller's `Coordination.mark_pending` (a round trip fewer)."""
    session = fill_muscle_groups(session, stores.muscle_lookup)
    folder = stores.settings.export_dir
    path = export_path(folder, session)

    def write_file(outcome: SaveOutcome) -> None:
        write_export(folder, session, path=path)
        if outcome.previous_json_path and outcome.previous_json_path != str(path):
            # the date changed and so did the file name: the old file would be a second copy
            remove_export(Path(outcome.previous_json_path), session.session_id)

    def check_file(path: Path, session_id: str) -> None:
        check_export_folder_present(stores)
        check_owner(path, session_id)

    athlete = session.userId
    outcome = stores.sessions.save(
        session,
        str(path),
        check_file=lambda: check_file(path, session.session_id),
        write_file=write_file,
        read_after=stores.coordination.marks_read(athlete) if read_marks else None,
    )
    since = {athlete: session.date.date() - timedelta(days=1)}
    if outcome.previous_athlete is not None and outcome.previous_date is not None:
        # a UTC time: its local day is at most one day earlier, and we start a day before that
        before = outcome.previous_date.date() - timedelta(days=2)
        old = outcome.previous_athlete
        since[old] = min(since.get(old, before), before)
    marks = {athlete: outcome.read_after} if outcome.read_after is not None else {}
    return SavedSession(
        session.session_id, str(path), session_activity_id(session), since, outcome.changed, marks
    )


def sync_session_activities(stores: Stores) -> int:
    """Write the activity rows of the sessions saved or changed since the last time, in
    batches, and mark them done; every recompute calls this before it reads activities.
    Unchanged rows are not rewritten; returns how many rows changed."""
    activities = stores.repository("activities")
    changed = 0
    for batch in stores.sessions.unsynced_activities():
        rows = [session_activity(s) for s, _ in batch]
        try:
            changed += len(activities.upsert_changes(rows))
        except ValidationError:  # one refused row must not hold up every athlete's metrics
            changed += _upsert_each(activities, rows)
        stores.sessions.mark_activities_synced([(s.session_id, v) for s, v in batch])
    return changed


def _upsert_each(activities: Repository, rows: list[dict[str, Any]]) -> int:
    """Upsert one row at a time, logging and leaving out each the table refuses (its
    session is marked done all the same; a new version of it is tried again)."""
    changed = 0
    for row in rows:
        try:
            changed += len(activities.upsert_changes([row]))
        except ValidationError as error:
            log.error("session %s: its activity row was refused: %s", row["sessionId"], error)
    return changed


def note_recompute(pending: dict[str, date], saved: SavedSession) -> None:
    """Fold a changed session's recompute dates into `pending` (earliest date per athlete)."""
    if saved.changed:
        for athlete, since in saved.recompute_from.items():
            pending[athlete] = min(pending.get(athlete, since), since)


def iso_dates(pending: dict[str, date]) -> dict[str, str]:
    """`recomputeFrom` as jobs return it: athlete -> ISO date."""
    return {athlete: since.isoformat() for athlete, since in pending.items()}


def save_session(stores: Stores, payload: Any) -> SavedSession:
    session = parse_session(payload, max_bytes=stores.settings.max_payload_bytes)
    return store_session(stores, session, read_marks=True)


def export_session_json(stores: Stores, session_id: Any) -> dict[str, Any]:
    try:
        sid = str(UUID(str(session_id)))
    except ValueError:
        raise ValidationError(
            f"session_id {str(session_id)[:60]!r} is not a UUID", field="session_id"
        ) from None
    session = stores.sessions.load(sid)
    if session is None:
        raise NotFound(f"session {sid} does not exist", table="training_sessions", key=sid)
    folder = stores.settings.export_dir
    path = export_path(folder, session)
    with stores.sessions.holding(sid, str(path)):
        current = stores.sessions.load(sid)  # as stored now that no save can run
        if current is None:
            raise NotFound(f"session {sid} does not exist", table="training_sessions", key=sid)
        return {"path": str(write_export(folder, current))}


def allowed_import_folder(stores: Stores, folder: Any) -> Path:
    """Only TRAINLOG_IMPORT_DIR (and the export folder, for recovery) may be read."""
    if not isinstance(folder, str) or not folder:
        raise ValidationError("folder must be a non-empty path", field="folder")
    candidate = Path(folder)
    for root in (stores.settings.import_dir, stores.settings.export_dir):
        base = candidate if candidate.is_absolute() else root / candidate
        try:
            resolved = contained(root, base)
        except ValidationError:
            continue
        try:
            is_folder = resolved.is_dir()
        except OSError as error:  # a name too long, say: no such folder can exist
            raise ValidationError(
                f"import folder {str(resolved)[:200]!r}: {error.strerror}", field="folder"
            ) from None
        if not is_folder:
            raise NotFound(f"import folder {resolved} does not exist", path=str(resolved))
        return resolved
    raise ValidationError(
        f"{folder} is outside the import folder {stores.settings.import_dir}",
        field="folder",
        path=folder,
    )


def import_sessions(
    stores: Stores, folder: Any, progress: Progress | None = None
) -> dict[str, Any]:
    """Every *.json file of the folder into SQL (and the export folder); errors per file.
    `recomputeFrom` names the athletes whose metrics the imported sessions changed."""
    root = allowed_import_folder(stores, folder)
    imported = unchanged = 0
    errors: list[dict[str, str]] = []
    pending: dict[str, date] = {}
    for path in sorted(root.glob("*.json")):
        try:
            # contained: a link inside the folder may not read a file outside it
            saved = store_session(
                stores,
                read_export(contained(root, path), max_bytes=stores.settings.max_payload_bytes),
            )
            imported, unchanged = imported + saved.changed, unchanged + (not saved.changed)
            note_recompute(pending, saved)
        except PersistenceError as error:
            if error.transient:
                raise
            errors.append({"file": path.name, "error": str(error)})
        if progress:
            progress(1)
    return {
        "imported": imported,
        "unchanged": unchanged,
        "errors": errors,
        "recomputeFrom": iso_dates(pending),
    }
