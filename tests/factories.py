"""Test data: valid session payloads and activity rows, varied by a counter."""

from __future__ import annotations

import uuid
from typing import Any


def session_payload(n: int = 0, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"trainlog-test-session-{n}")),
        "userId": "athlete-1",
        "userName": "Ana Test",
        "date": f"2026-03-{1 + n % 28:02d}T18:00:00-07:00",
        "phase": "build",
        "week": 3,
        "isDeloadWeek": False,
        "focus": "lower body",
        "durationSec": 3600.0,
        "exercises": [
            {
                "Order": 1,
                "Name": "Back Squat",
                "targetMuscleGroups": ["quadriceps", "glutes"],
                "warmupSets": [{"set": 1, "weightKg": 40.0, "repCount": 8, "notes": None}],
                "workingSets": [
                    {
                        "set": 1,
                        "weightKg": 100.0,
                        "repCount": {"full": 5, "partial": 0},
                        "rpe": 8.0,
                        "repAssessment": "solid",
                        "actualRestMinutes": 3.0,
                        "notes": "felt good",
                    },
                    {
                        "set": 2,
                        "weightKg": 100.0,
                        "repCount": {"full": 4, "partial": 1},
                        "rpe": 9.0,
                        "repAssessment": "grind",
                        "actualRestMinutes": 3.5,
                        "notes": None,
                    },
                ],
            },
            {
                "Order": 2,
                "Name": "Romanian Deadlift",
                "targetMuscleGroups": [],
                "warmupSets": [],
                "workingSets": [
                    {
                        "set": 1,
                        "weightKg": 80.0,
                        "repCount": {"full": 8, "partial": 0},
                        "rpe": 7.0,
                        "repAssessment": None,
                        "actualRestMinutes": 2.0,
                        "notes": None,
                    }
                ],
            },
        ],
    }
    payload.update(changes)
    return payload


def activity(
    n: int, athlete: str = "athlete-1", day: str = "2026-03-02", **extra: Any
) -> dict[str, Any]:
    return {
        "activityId": f"act-{athlete}-{n}",
        "athleteId": athlete,
        "startTime": f"{day}T{6 + n % 12:02d}:00:00Z",
        "sport": "run",
        "durationSec": 3600.0,
        "avgHr": 150.0,
        **extra,
    }
