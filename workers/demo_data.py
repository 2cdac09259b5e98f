"""A realistic demo athlete: months of runs, rides and swims, thresholds that change, a weekly
plan with a deload every fourth week, and two strength sessions a week."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ATHLETE = "demo-athlete"
TIMEZONE = "America/Denver"
LIFTS = [
    ("Back Squat", 80.0),
    ("Bench Press", 60.0),
    ("Deadlift", 100.0),
    ("Overhead Press", 40.0),
    ("Barbell Row", 55.0),
    ("Romanian Deadlift", 70.0),
    ("Pull-Up", 0.0),
    ("Walking Lunge", 20.0),
]
# weekday -> (sport, minutes, intensity factor, hour of day)
WEEK = {
    1: ("run", 50, 0.88, 6),
    2: ("ride", 75, 0.75, 17),
    3: ("run", 40, 0.72, 6),
    4: ("swim", 45, 0.70, 12),
    5: ("ride", 150, 0.70, 8),
    6: ("run", 95, 0.74, 8),
}


@dataclass
class DemoData:
    athlete: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)


def generate(months: int = 6, end: date | None = None, seed: int = 42) -> DemoData:
    rng = random.Random(seed)
    last = end or date.today() - timedelta(days=1)
    first = last - timedelta(days=int(months * 30.4))
    first -= timedelta(days=first.weekday())  # start on a Monday
    data = DemoData()
    data.athlete.append(
        {"athleteId": ATHLETE, "name": "Demo Athlete", "timezone": TIMEZONE, "birthYear": 1990}
    )
    middle = first + (last - first) / 2
    data.thresholds += [
        {
            "thresholdId": "demo-ftp-1",
            "athleteId": ATHLETE,
            "sport": "ride",
            "validFrom": first.isoformat(),
            "ftpW": 240,
        },
        {
            "thresholdId": "demo-ftp-2",
            "athleteId": ATHLETE,
            "sport": "ride",
            "validFrom": middle.isoformat(),
            "ftpW": 255,
        },
        {
            "thresholdId": "demo-hr-run",
            "athleteId": ATHLETE,
            "sport": "run",
            "validFrom": first.isoformat(),
            "thresholdHr": 170,
        },
    ]
    zone = ZoneInfo(TIMEZONE)
    day = first
    while day <= last:
        week_number = (day - first).days // 7
        scale = (0.6 if week_number % 4 == 3 else 1.0) * (1 + 0.02 * week_number)
        plan = WEEK.get(day.weekday())
        if plan:
            sport, minutes, intensity, hour = plan
            _add_workout(data, rng, day, zone, sport, minutes * scale, intensity, hour)
        if day.weekday() in (0, 3):
            data.sessions.append(_strength_session(rng, day, zone, week_number, scale < 1))
        day += timedelta(days=1)
    return data


def _add_workout(
    data: DemoData,
    rng: random.Random,
    day: date,
    zone: ZoneInfo,
    sport: str,
    minutes: float,
    intensity: float,
    hour: int,
) -> None:
    planned_id = f"plan-{day.isoformat()}-{sport}"
    planned_load = minutes / 60 * intensity**2 * 100
    data.planned.append(
        {
            "plannedSessionId": planned_id,
            "athleteId": ATHLETE,
            "date": day.isoformat(),
            "sport": sport,
            "plannedLoad": round(planned_load, 1),
            "plannedDurationSec": round(minutes * 60),
        }
    )
    if rng.random() < 0.08:  # a missed workout now and then
        return
    actual = minutes * rng.uniform(0.85, 1.15)
    start = datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=zone)
    row: dict[str, Any] = {
        "activityId": f"act-{day.isoformat()}-{sport}",
        "athleteId": ATHLETE,
        "startTime": start.astimezone(UTC).isoformat(),
        "sport": sport,
        "durationSec": round(actual * 60, 1),
        "source": "demo",
        "distanceM": round(actual * {"run": 180, "ride": 520, "swim": 40}[sport], 1),
    }
    effort = intensity * rng.uniform(0.93, 1.07)
    if sport == "ride":
        ftp = 240 if day < date.today() - timedelta(days=90) else 255
        row["normalizedPowerW"] = round(ftp * effort, 1)
        row["avgPowerW"] = round(ftp * effort * 0.94, 1)
        row["avgHr"] = round(150 * effort / 0.8)
    elif sport == "run":
        row["avgHr"] = round(170 * effort)
    else:
        row["rpe"] = round(min(10.0, effort * 10), 1)
    data.activities.append(row)


def _strength_session(
    rng: random.Random, day: date, zone: ZoneInfo, week: int, deload: bool
) -> dict[str, Any]:
    picks = rng.sample(LIFTS, 4)
    exercises = []
    for order, (name, base) in enumerate(picks, start=1):
        weight = round(base * (1 + 0.01 * week) * (0.85 if deload else 1.0) / 2.5) * 2.5
        exercises.append(
            {
                "Order": order,
                "Name": name,
                "targetMuscleGroups": [],
                "warmupSets": [
                    {"set": 1, "weightKg": round(weight * 0.5, 1), "repCount": 8, "notes": None}
                ]
                if weight
                else [],
                "workingSets": [
                    {
                        "set": n,
                        "weightKg": weight,
                        "repCount": {"full": rng.choice([5, 6, 8]), "partial": 0},
                        "rpe": round(rng.uniform(6.5, 9.0), 1),
                        "repAssessment": "solid",
                        "actualRestMinutes": round(rng.uniform(1.5, 3.0), 1),
                        "notes": None,
                    }
                    for n in range(1, 4)
                ],
            }
        )
    start = datetime(day.year, day.month, day.day, 18, 0, tzinfo=zone)
    return {
        "_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "userId": ATHLETE,
        "userName": "Demo Athlete",
        "date": start.isoformat(),
        "phase": "base" if week < 8 else "build",
        "week": week + 1,
        "isDeloadWeek": deload,
        "focus": "full body strength",
        "durationSec": float(rng.randrange(2700, 4200, 60)),
        "exercises": exercises,
    }
