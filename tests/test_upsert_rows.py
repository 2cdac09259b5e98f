"""upsert_rows as a producer uses it: a `version` it read guards its write (optimistic
concurrency, on CSV, SQLite and PostgreSQL), and reference entries it sends become audited
`user` rows that stay in use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from storage.errors import Conflict, ValidationError
from storage.settings import Settings
from storage.sql.schema import sql_table
from storage.stores import Stores
from tasks.rows import upsert_rows
from tasks.sessions import save_session
from tests.factories import activity, session_payload
from tests.services import postgres_database


@pytest.fixture(params=["csv", "sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    settings = Settings.for_home(tmp_path / "home", lock_timeout=2.0)
    with postgres_database() if request.param == "postgresql" else nullcontext(None) as url:
        if request.param != "csv":
            settings = settings.with_(table_backends={"*": "sql"})
        if url:
            settings = settings.with_(database_url=url)
        opened = Stores(settings)
        opened.initialize()
        yield opened
        opened.close()


def test_a_write_naming_a_stale_version_is_a_conflict_and_writes_nothing(stores: Stores) -> None:
    upsert_rows(stores, "goals", [_goal("g1", "first")])
    assert _stored(stores, "g1") == ("first", 1)
    upsert_rows(stores, "goals", [{**_goal("g1", "second"), "version": 1}])  # read at 1
    assert _stored(stores, "g1") == ("second", 2)
    with pytest.raises(Conflict, match="goals g1 is at version 2, not 1") as caught:
        upsert_rows(  # a second producer that also read version 1
            stores, "goals", [_goal("g2", "new"), {**_goal("g1", "lost update"), "version": 1}]
        )
    assert caught.value.table == "goals" and caught.value.key == "g1"
    assert _stored(stores, "g1") == ("second", 2)
    assert _stored(stores, "g2") is None  # nothing of the refused job is kept
    with pytest.raises(Conflict, match="does not exist"):
        upsert_rows(stores, "goals", [{**_goal("g3", "never stored"), "version": 4}])


def test_a_versioned_write_sent_again_succeeds_as_it_did(stores: Stores) -> None:
    """A job whose rows committed before a later step failed runs again with the same
    message: what it wrote is stored already, which is no conflict."""
    upsert_rows(stores, "goals", [_goal("g1", "first")])
    edit = {**_goal("g1", "second"), "version": 1}
    upsert_rows(stores, "goals", [edit])
    assert upsert_rows(stores, "goals", [edit])["upserted"] == 1
    assert _stored(stores, "g1") == ("second", 2)


def test_a_bad_value_of_a_secret_column_is_not_quoted(stores: Stores) -> None:
    token = {"athleteId": "a", "provider": "p", "expiresAt": "SECRET-TOKEN-VALUE"}
    for row in (token, {**token, "version": 1}):
        with pytest.raises(ValidationError) as caught:
            upsert_rows(stores, "tokens", [row])
        assert "expiresAt" in str(caught.value) and "SECRET" not in str(caught.value)


def test_a_version_that_is_no_whole_number_from_one_is_refused(stores: Stores) -> None:
    for version in ("2", 0, 1.5, True):
        with pytest.raises(ValidationError, match="version must be the whole number") as caught:
            upsert_rows(stores, "goals", [{**_goal("g1", "x"), "version": version}])
        assert caught.value.field == "version"
    assert _stored(stores, "g1") is None


def test_a_versioned_activity_still_schedules_its_recompute(stores: Stores) -> None:
    upsert_rows(stores, "activities", [activity(1, day="2026-03-10")])
    moved = upsert_rows(stores, "activities", [{**activity(1, day="2026-03-20"), "version": 1}])
    assert moved["recomputeFrom"] == {"athlete-1": "2026-03-09"}


def test_a_catalog_entry_sent_by_a_producer_stays_in_use_and_is_audited(
    settings: Settings,
) -> None:
    stores = Stores(settings.with_(catalog_refresh=0))
    stores.initialize()
    assert stores.muscle_lookup("bench press") == ["chest", "triceps", "front delts"]  # imported
    sent = {"exerciseId": "bench-press", "name": "Bench Press", "targetMuscleGroups": ["chest"]}
    upsert_rows(stores, "exercise_catalog", [sent])
    entry = _entry(stores, "bench-press")
    assert entry["source"] == "user" and entry["active"] is True
    assert stores.muscle_lookup("bench press") == ["chest"]  # what a session's export gets
    upsert_rows(stores, "exercise_catalog", [sent])  # as stored: nothing to audit
    upsert_rows(stores, "exercise_catalog", [{**sent, "exerciseId": "my-press", "active": False}])
    upsert_rows(stores, "exercise_catalog", [{**sent, "targetMuscleGroups": ["triceps"]}])
    audit = _audit(stores)
    assert [(a["entryId"], a["action"], a["changedBy"]) for a in audit] == [
        ("bench-press", "edited", "upsert_rows"),
        ("my-press", "added", "upsert_rows"),
        ("bench-press", "edited", "upsert_rows"),
    ]
    assert audit[0]["previousValue"]["source"] == "factory"
    assert audit[2]["newValue"]["targetMuscleGroups"] == ["triceps"]
    assert _entry(stores, "my-press")["active"] is False
    edited = {**sent, "targetMuscleGroups": ["triceps"]}
    assert upsert_rows(stores, "exercise_catalog", [{**edited, "version": 3}])  # a resend
    with pytest.raises(Conflict, match="exercise_catalog bench-press is at version"):
        upsert_rows(stores, "exercise_catalog", [{**sent, "version": 1}])
    upsert_rows(  # a user's own entry whose name differs from a factory one in spelling only
        stores, "exercise_catalog", [{"exerciseId": "my-pull", "name": "pull up",
                                      "targetMuscleGroups": ["forearms"]}]
    )  # fmt: skip
    assert stores.muscle_lookup("Pull-Up") == ["lats", "biceps", "upper back"]
    assert stores.muscle_lookup("pull up") == ["forearms"]
    stores.close()


def test_a_session_of_a_catalog_exercise_sent_by_a_producer_gets_its_groups(
    settings: Settings,
) -> None:
    stores = Stores(settings.with_(catalog_refresh=0))
    stores.initialize()
    upsert_rows(
        stores,
        "exercise_catalog",
        [{"exerciseId": "sled-push", "name": "Sled Push", "targetMuscleGroups": ["quadriceps"]}],
    )
    payload = session_payload(3)
    payload["exercises"][0] |= {"Name": "Sled Push", "targetMuscleGroups": []}
    saved = save_session(stores, payload)
    exported = Path(saved.json_path).read_text()
    assert '"quadriceps"' in exported
    stores.close()


def _goal(goal_id: str, title: str) -> dict[str, Any]:
    return {"goalId": goal_id, "athleteId": "a1", "title": title}


def _stored(stores: Stores, goal_id: str) -> tuple[str, int] | None:
    row = stores.repository("goals").get(goal_id)
    return None if row is None else (row["title"], row["version"])


def _entry(stores: Stores, entry_id: str) -> dict[str, Any]:
    table = sql_table("exercise_catalog")
    with stores.database.transaction() as connection:
        found = connection.execute(sa.select(table).where(table.c.exerciseId == entry_id))
        return dict(found.mappings().one())


def _audit(stores: Stores) -> list[dict[str, Any]]:
    audit = sql_table("seed_audit")
    query = sa.select(audit).where(audit.c.changedBy == "upsert_rows").order_by(audit.c.changedAt)
    with stores.database.transaction() as connection:
        return [dict(r) for r in connection.execute(query).mappings()]
