"""A session as the SQL rows that store it: one training_sessions row, one session_exercises
row per exercise and one session_sets row per set. Times are UTC, naive for SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storage.sessions.model import TrainingSession

Rows = list[dict[str, Any]]


def utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time is UTC already (SQLite keeps them so)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def stored_time(moment: datetime, dialect: str) -> datetime:
    """A time as this database stores it: UTC, naive on SQLite."""
    moment = utc(moment)
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment


def session_row(
    session: TrainingSession,
    *,
    digest: str,
    json_path: str,
    now: datetime,
    created: datetime,
    version: int,
    dialect: str,
) -> dict[str, Any]:
    return {
        "sessionId": session.session_id,
        "userId": session.userId,
        "userName": session.userName,
        "date": stored_time(session.date, dialect),
        "phase": None if session.phase is None else str(session.phase),
        "week": session.week,
        "isDeloadWeek": session.isDeloadWeek,
        "focus": session.focus,
        "durationSec": session.durationSec,
        "payloadHash": digest,
        "jsonPath": json_path,
        "document": session.document(),
        "createdAt": created,
        "updatedAt": now,
        "version": version,
        "activityVersion": None,  # its activity row is written by the next recompute
    }


def child_rows(session: TrainingSession, now: datetime) -> tuple[Rows, Rows]:
    """The exercise rows and the set rows (warm-up sets first, each kind in its order)."""
    stamp = {"createdAt": now, "updatedAt": now, "version": 1}
    sid = session.session_id
    exercises: Rows = []
    sets: Rows = []
    for exercise in session.exercises:
        exercises.append(
            {
                "sessionId": sid,
                "exerciseOrder": exercise.Order,
                "name": exercise.Name,
                "targetMuscleGroups": list(exercise.targetMuscleGroups),
                **stamp,
            }
        )
        for position, warm in enumerate(exercise.warmupSets):
            sets.append(
                {
                    "sessionId": sid,
                    "exerciseOrder": exercise.Order,
                    "kind": "warmup",
                    "position": position,
                    "setNumber": warm.set,
                    "weightKg": warm.weightKg,
                    "repFull": warm.repCount,
                    "repPartial": None,
                    "rpe": None,
                    "repAssessment": None,
                    "actualRestMinutes": None,
                    "notes": warm.notes,
                    **stamp,
                }
            )
        for position, work in enumerate(exercise.workingSets):
            sets.append(
                {
                    "sessionId": sid,
                    "exerciseOrder": exercise.Order,
                    "kind": "working",
                    "position": position,
                    "setNumber": work.set,
                    "weightKg": work.weightKg,
                    "repFull": work.repCount.full,
                    "repPartial": work.repCount.partial,
                    "rpe": work.rpe,
                    "repAssessment": work.repAssessment,
                    "actualRestMinutes": work.actualRestMinutes,
                    "notes": work.notes,
                    **stamp,
                }
            )
    return exercises, sets
