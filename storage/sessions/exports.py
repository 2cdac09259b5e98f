"""Session JSON files: `training_session_YYYY_MM_DD_<first 8 of uuid>.json`, schema-checked,
written atomically, never outside their folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from storage.atomic import write_atomic
from storage.errors import (
    Conflict,
    CorruptFile,
    PersistenceError,
    Unavailable,
    ValidationError,
)
from storage.file_reads import read_bounded
from storage.json_values import unique_keys
from storage.sessions.model import TrainingSession, parse_session
from storage.sessions.schema import check_document
from storage.values import check_nesting

MuscleLookup = Callable[[str], list[str]]


def export_name(session: TrainingSession) -> str:
    return f"training_session_{session.date:%Y_%m_%d}_{session.session_id[:8]}.json"


def contained(folder: Path, candidate: Path) -> Path:
    """`candidate` resolved, or VALIDATION if it escapes `folder` (links and '..' included).
    A plain name in `folder` that is no link resolves to itself inside the resolved folder:
    one lstat instead of one per path component, on every save."""
    try:
        if candidate.parent == folder and candidate.name != ".." and "\x00" not in candidate.name:
            resolved = folder.resolve() / candidate.name
            if not os.path.islink(resolved):
                return resolved
        root, resolved = folder.resolve(), candidate.resolve()
    except ValueError:  # a NUL character: no file system takes it
        raise ValidationError(
            f"{str(candidate)!r} is not a usable path", path=repr(str(candidate)), field="path"
        ) from None
    if resolved != root and root not in resolved.parents:
        raise ValidationError(f"{candidate} is outside {folder}", path=str(candidate), field="path")
    return resolved


def fill_muscle_groups(session: TrainingSession, lookup: MuscleLookup | None) -> TrainingSession:
    """Exercises with no targetMuscleGroups get them from the bundled catalog, when known."""
    if lookup is None or all(exercise.targetMuscleGroups for exercise in session.exercises):
        return session
    exercises = [
        exercise
        if exercise.targetMuscleGroups
        else exercise.model_copy(update={"targetMuscleGroups": lookup(exercise.Name)})
        for exercise in session.exercises
    ]
    filled = session.model_copy(update={"exercises": exercises})
    filled._document = None  # built again, with the groups
    return filled


def export_path(folder: Path, session: TrainingSession) -> Path:
    """Where the session's file goes: its name in `folder`, resolved and kept inside it."""
    return contained(folder, folder / export_name(session))


def write_export(folder: Path, session: TrainingSession, *, path: Path | None = None) -> Path:
    """Write the session's JSON file (schema-checked first); returns its path. A caller that
    already holds `export_path(folder, session)` passes it, saving a second resolve."""
    document = session.document()
    check_document(document)
    path = export_path(folder, session) if path is None else path
    check_owner(path, session.session_id)
    write_atomic(path, export_bytes(document))
    return path


def check_owner(path: Path, session_id: str) -> None:
    """CONFLICT when `path` holds another session: one with the same day and uuid prefix."""
    owner = export_owner(path)
    if owner is not None and owner != session_id:
        raise Conflict(
            f"{path.name} already holds session {owner}; session {session_id} has the same "
            "date and uuid prefix, and a file is never overwritten by another session",
            path=str(path),
            key=session_id,
        )


_EXPORT_LAYOUT = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def export_bytes(document: dict[str, Any]) -> bytes:
    """The file's bytes: two-space indent, sorted keys, UTF-8, a final newline. orjson writes
    the same bytes as json's indented encoder, far faster; json takes what orjson refuses (an
    integer past 64 bits)."""
    try:
        return orjson.dumps(document, option=_EXPORT_LAYOUT)
    except TypeError:
        text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        return text.encode("utf-8")


def remove_export(path: Path, session_id: str) -> bool:
    """Delete `path` if it holds session `session_id` (a file left under a session's old name
    after its date changed); another session's file is never touched."""
    if export_owner(path) != session_id:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise Unavailable(f"cannot remove {path}: {error.strerror}", path=str(path)) from None
    return True


def export_owner(path: Path) -> str | None:
    """The `_id` stored in an existing export file (None: no file, or unreadable)."""
    try:
        owner = json.loads(read_bounded(path, OWNER_READ_LIMIT)).get("_id")
    except (PersistenceError, ValueError, AttributeError, RecursionError):
        return None
    return str(owner) if owner else None


EXPORT_SIZE_FACTOR = 4  # an export is indented: ~1.9x the payload's compact JSON
OWNER_READ_LIMIT = 64 << 20  # whose file a name holds: read up to this (a FIFO: not at all)


def read_export(path: Path, *, max_bytes: int = 1_000_000) -> TrainingSession:
    """Read, schema-check and parse one session file; errors name the file. `max_bytes` is
    the payload limit: a file may be EXPORT_SIZE_FACTOR times that, so that every session
    accepted can be restored from its own export (indentation, the data-model stamp and
    filled muscle groups make the file larger than the payload was)."""
    raw = read_bounded(path, EXPORT_SIZE_FACTOR * max_bytes)
    try:
        document = json.loads(raw, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError) as error:  # RecursionError: "[[[[…" nested too deep
        raise CorruptFile(f"{path.name} is not valid JSON: {error}", path=str(path)) from None
    check_nesting(document, path.name)
    check_document(document, source=path.name)
    try:
        return parse_session(document, max_bytes=EXPORT_SIZE_FACTOR * max_bytes)
    except ValidationError as error:
        raise ValidationError(
            f"{path.name}: {error.message}", field=error.field, path=str(path)
        ) from None
