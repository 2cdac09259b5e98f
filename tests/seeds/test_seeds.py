"""Seed updates against test bundles (packages v1, v2, corrupt) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage import migrations
from storage.errors import SeedDataError
from storage.seeds.bundle import DATASETS, load_bundle
from storage.seeds.catalog import CatalogLookup
from storage.seeds.sync import import_status, sync_seeds
from storage.settings import Settings
from storage.sql.database import Database
from storage.sql.schema import sql_table
from storage.stores import Stores
from tasks import rows, sessions
from tests.factories import session_payload

V1, V2, CORRUPT = (f"tests.seeds.bundles.{name}" for name in ("v1", "v2", "corrupt"))


@pytest.fixture
def database(sql_settings: Settings):
    database = Database(sql_settings.database_url)
    migrations.upgrade(database)
    yield database
    database.dispose()


def catalog(database: Database) -> dict[str, dict]:
    with database.engine.connect() as connection:
        return {
            r["exerciseId"]: dict(r)
            for r in connection.execute(sa.select(sql_table("exercise_catalog"))).mappings()
        }


def audit_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(sql_table("seed_audit"))
        ).scalar_one()


def edit_by_user(database: Database, settings: Settings) -> None:
    stores = Stores(settings)
    rows.upsert_rows(
        stores,
        "exercise_catalog",
        [
            {
                "exerciseId": "bench",
                "name": "Bench Press",
                "targetMuscleGroups": ["pecs"],
                "category": "test",
                "equipment": "barbell",
                "active": True,
            }
        ],
    )


def test_bundled_catalog_is_complete() -> None:
    bundle = load_bundle(DATASETS[0])
    assert len(bundle.entries) >= 100
    assert all(entry["targetMuscleGroups"] for entry in bundle.entries.values())
    assert load_bundle(DATASETS[1]).entries


def test_first_import_then_preview_lists_exactly_the_differences(database: Database) -> None:
    first = sync_seeds(database, apply=True, package=V1)
    assert len(first["exercise_catalog"]["added"]) == 4 and first["exercise_catalog"]["applied"]
    assert import_status(database)["exercise_catalog"]["datasetVersion"] == "1"
    preview = sync_seeds(database, apply=False, package=V2)["exercise_catalog"]
    assert [e["id"] for e in preview["added"]] == ["dip"]
    assert {c["id"]: c["to"]["targetMuscleGroups"] for c in preview["changed"]} == {
        "squat": ["quadriceps", "glutes"],
        "bench": ["chest", "triceps"],
    }
    assert [e["id"] for e in preview["removed"]] == ["curl"]
    assert preview["applied"] is False
    assert catalog(database)["squat"]["targetMuscleGroups"] == ["quadriceps"]  # untouched


def test_apply_keeps_user_rows_updates_factory_deactivates_removed(
    database: Database, sql_settings: Settings
) -> None:
    sync_seeds(database, apply=True, package=V1)
    edit_by_user(database, sql_settings)
    before_audit = audit_count(database)
    report = sync_seeds(database, apply=True, package=V2, actor="tester")["exercise_catalog"]
    assert report["kept"] == ["bench"] and report["applied"]
    rows_now = catalog(database)
    assert (
        rows_now["bench"]["targetMuscleGroups"] == ["pecs"]
        and rows_now["bench"]["source"] == "user"
    )
    assert rows_now["squat"]["targetMuscleGroups"] == ["quadriceps", "glutes"]
    assert rows_now["curl"]["active"] is False and rows_now["dip"]["active"] is True
    assert audit_count(database) == before_audit + 3  # squat updated, curl off, dip added
    with database.engine.connect() as connection:
        entry = (
            connection.execute(
                sa.select(sql_table("seed_audit")).where(
                    sql_table("seed_audit").c.entryId == "squat"
                )
            )
            .mappings()
            .all()[-1]
        )
    assert entry["previousValue"]["targetMuscleGroups"] == ["quadriceps"]
    assert entry["changedBy"] == "tester" and entry["reason"].startswith("bundled update")
    stamps = {k: v["updatedAt"] for k, v in rows_now.items()}
    again = sync_seeds(database, apply=True, package=V2)["exercise_catalog"]
    assert again["applied"] is False and audit_count(database) == before_audit + 3
    assert {k: v["updatedAt"] for k, v in catalog(database).items()} == stamps


def test_reset_restores_factory_rows_audited(database: Database, sql_settings: Settings) -> None:
    sync_seeds(database, apply=True, package=V1)
    edit_by_user(database, sql_settings)
    before = audit_count(database)
    sync_seeds(database, apply=True, reset=True, package=V1, actor="admin")
    bench = catalog(database)["bench"]
    assert bench["targetMuscleGroups"] == ["chest"] and bench["source"] == "factory"
    assert audit_count(database) == before + 1


def test_corrupt_bundle_is_a_clear_error_and_changes_nothing(database: Database) -> None:
    sync_seeds(database, apply=True, package=V1)
    before, audits = catalog(database), audit_count(database)
    with pytest.raises(SeedDataError, match="duplicate exerciseId 'squat'"):
        sync_seeds(database, apply=True, package=CORRUPT)
    assert catalog(database) == before and audit_count(database) == audits
    with pytest.raises(SeedDataError, match="cannot be read"):
        sync_seeds(database, apply=False, package="tests.seeds.bundles.missing")


def test_export_fills_empty_muscle_groups_from_catalog(settings: Settings) -> None:
    stores = Stores(settings)
    stores.initialize()
    saved = sessions.save_session(stores, session_payload(1))
    document = stores.sessions.load(saved.session_id).document()
    rdl = next(e for e in document["exercises"] if e["Name"] == "Romanian Deadlift")
    assert rdl["targetMuscleGroups"] == ["hamstrings", "glutes", "lower back"]
    squat = next(e for e in document["exercises"] if e["Name"] == "Back Squat")
    assert squat["targetMuscleGroups"] == ["quadriceps", "glutes"]  # given ones are kept
    stores.close()


def rdl_groups(stores: Stores, n: int) -> list[str]:
    saved = sessions.save_session(stores, session_payload(n))
    document = stores.sessions.load(saved.session_id).document()
    return next(e for e in document["exercises"] if e["Name"] == "Romanian Deadlift")[
        "targetMuscleGroups"
    ]


def edit_rdl(settings: Settings, groups: list[str]) -> None:
    """A catalog edit made by another process (a worker's upsert_rows job, say)."""
    rows.upsert_rows(
        Stores(settings),
        "exercise_catalog",
        [
            {
                "exerciseId": "romanian-deadlift",
                "name": "Romanian Deadlift",
                "targetMuscleGroups": groups,
                "category": "hinge",
                "equipment": "barbell",
                "active": True,
            }
        ],
    )


def test_a_catalog_edit_elsewhere_reaches_a_running_worker(settings: Settings) -> None:
    worker = Stores(settings.with_(catalog_refresh=0))
    worker.initialize()
    assert rdl_groups(worker, 1) == ["hamstrings", "glutes", "lower back"]
    edit_rdl(settings, ["hamstrings"])
    assert rdl_groups(worker, 2) == ["hamstrings"]
    worker.close()


def test_the_catalog_is_read_again_once_older_than_the_refresh_age(settings: Settings) -> None:
    stores = Stores(settings)
    stores.initialize()
    now = [1000.0]
    lookup = CatalogLookup(stores.database, settings.catalog_refresh, clock=lambda: now[0])
    assert lookup("romanian deadlift") == ["hamstrings", "glutes", "lower back"]
    edit_rdl(settings, ["hamstrings"])
    now[0] += settings.catalog_refresh - 1
    assert lookup("Romanian Deadlift") == ["hamstrings", "glutes", "lower back"]  # still cached
    now[0] += 1
    assert lookup("ROMANIAN DEADLIFT ") == ["hamstrings"]
    assert lookup("Unknown Lift") == []
    stores.close()


@pytest.mark.parametrize(
    ("written", "catalog_name"),
    [
        ("Barbell Bench Press", "Bench Press"),  # the original design's own session
        ("barbell back squat", "Back Squat"),
        ("DB Bench Press", "Bench Press"),
        ("Dumbbell Bench Press", "Dumbbell Bench Press"),  # its own entry first
        ("Pull Up", "Pull-Up"),
        ("chin-ups", "Chin-Up"),
        ("Farmers Walk", "Farmer's Walk"),
        ("Farmer\u2019s  walk", "Farmer's Walk"),
        ("Dips", "Dip"),
        ("Lateral Raises", "Lateral Raise"),
    ],
)
def test_an_exercise_is_found_as_people_write_it(
    settings: Settings, written: str, catalog_name: str
) -> None:
    stores = Stores(settings.with_(catalog_refresh=0))
    stores.initialize()
    found = stores.muscle_lookup(written)  # imports the bundled catalog on first use
    expected = catalog(stores.database)
    groups = {entry["name"]: entry["targetMuscleGroups"] for entry in expected.values()}
    assert groups[catalog_name] and found == groups[catalog_name]
    assert stores.muscle_lookup("Barbell Unknown Lift") == []
    stores.close()
