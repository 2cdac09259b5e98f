"""Every table in SQL (the several-hosts profile) gives the numbers CSV gives, full and
incremental, on SQLite and on PostgreSQL: the filters the SQL path pushes into its queries
keep exactly the rows the CSV path keeps."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from storage.settings import Settings
from storage.stores import Stores
from tasks import rows
from tasks.metrics import recompute

ATHLETES = ("p", "q", "r")
START = date(2026, 1, 1)


def activities(seed: int, count: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "activityId": f"{prefix}{n}",
            "athleteId": rng.choice(ATHLETES),
            "startTime": f"{START + timedelta(days=rng.randrange(70))}T{rng.randrange(24):02d}:30Z",
            "sport": rng.choice(["run", "ride"]),
            "durationSec": rng.uniform(900, 7200),
            "avgHr": rng.uniform(110, 180),
            "normalizedPowerW": rng.choice([None, rng.uniform(120, 320)]),
        }
        for n in range(count)
    ]


def seeded(settings: Settings) -> Stores:
    stores = Stores(settings)
    stores.initialize()
    rows.upsert_rows(
        stores,
        "athlete",
        [
            {"athleteId": a, "timezone": z}
            for a, z in zip(ATHLETES, ("UTC", "Asia/Tokyo", "America/Denver"), strict=True)
        ],
    )
    rows.upsert_rows(
        stores,
        "thresholds",
        [
            {
                "thresholdId": f"t-{a}",
                "athleteId": a,
                "sport": "ride",
                "validFrom": "2026-01-01",
                "ftpW": 250,
            }
            for a in ATHLETES
        ]
        + [
            {
                "thresholdId": f"h-{a}",
                "athleteId": a,
                "sport": "run",
                "validFrom": "2026-01-10",
                "thresholdHr": 170,
            }
            for a in ATHLETES
        ],
    )
    rows.upsert_rows(
        stores,
        "planned_sessions",
        [
            {
                "plannedSessionId": f"ps-{a}-{d}",
                "athleteId": a,
                "date": str(START + timedelta(days=d)),
                "sport": "run",
                "plannedLoad": 60.0,
            }
            for a in ATHLETES
            for d in range(0, 70, 3)
        ],
    )
    rows.upsert_rows(stores, "activities", activities(1, 150, "a"))
    return stores


def outputs(stores: Stores) -> dict[str, pd.DataFrame]:
    out = {}
    for table, keys in (
        ("activities_metrics", ["activityId"]),
        ("daily_metrics", ["athleteId", "date"]),
        ("weekly_metrics", ["athleteId", "weekStartDate"]),
        ("planned_metrics", ["plannedSessionId"]),
    ):
        frame = stores.repository(table).read_frame()
        if "activityIds" in frame:  # JSON text: the same value, spaced by each backend its way
            frame["activityIds"] = frame["activityIds"].map(json.loads)
        out[table] = (
            frame.drop(columns=["createdAt", "updatedAt", "version"])
            .sort_values(keys)
            .reset_index(drop=True)
        )
    return out


def run(stores: Stores) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Outputs after a full recompute, then after new activities and an incremental one."""
    recompute.recompute_many(stores, {a: None for a in ATHLETES})
    full = outputs(stores)
    changed = rows.upsert_rows(stores, "activities", activities(2, 12, "b"))["recomputeFrom"]
    recompute.recompute_many(stores, {a: date.fromisoformat(d) for a, d in changed.items()})
    return full, outputs(stores)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_table_in_sql_gives_the_csv_numbers(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    csv = seeded(Settings.for_home(tmp_path / "csv"))
    sql_settings = Settings.for_home(tmp_path / "sql", table_backends={"*": "sql"})
    if database == "postgresql":
        sql_settings = sql_settings.with_(database_url=request.getfixturevalue("postgres_url"))
    sql = seeded(sql_settings)
    try:
        assert sql.backend_of("daily_metrics") == "sql"
        expected, got = run(csv), run(sql)
        for stage in (0, 1):
            for table, frame in expected[stage].items():
                assert len(frame) > 0, table
                pd.testing.assert_frame_equal(got[stage][table], frame, check_dtype=False)
    finally:
        csv.close()
        sql.close()
