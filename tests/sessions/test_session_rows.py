"""The SQL rows of a saved session, on SQLite and PostgreSQL: what the compiled statements of
the save path store reads back through SQLAlchemy as the payload said, a changed session
replaces its rows, and a failing statement leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from storage.errors import PersistenceError
from storage.sessions.model import parse_session
from storage.sessions.store import SessionStore
from storage.settings import Settings
from storage.sql.schema import sql_table
from storage.stores import Stores
from tests.factories import session_payload


@pytest.fixture
def store(sql_settings: Settings) -> Iterator[SessionStore]:
    stores = Stores(sql_settings)
    stores.initialize()
    yield stores.sessions
    stores.close()


def rows(store: SessionStore, table: str) -> list[dict]:
    t = sql_table(table)
    with store.database.transaction() as connection:
        found = connection.execute(sa.select(t).order_by(*t.primary_key.columns)).mappings()
        return [dict(row) for row in found]


def test_saved_rows_read_back_as_the_payload_said(store: SessionStore) -> None:
    session = parse_session(session_payload(3, isDeloadWeek=True, userName="Zoë Ø"))
    assert store.save(session, "/exports/a.json").changed
    (row,) = rows(store, "training_sessions")
    when = row["date"] if row["date"].tzinfo else row["date"].replace(tzinfo=UTC)
    assert when == datetime(2026, 3, 5, 1, 0, tzinfo=UTC)  # 18:00 at -07:00
    assert (row["userName"], row["isDeloadWeek"], row["week"]) == ("Zoë Ø", True, 3)
    assert row["document"] == session.document() and row["version"] == 1
    assert row["payloadHash"] == session.content_hash() and row["jsonPath"] == "/exports/a.json"
    exercises = rows(store, "session_exercises")
    assert [(e["exerciseOrder"], e["name"]) for e in exercises] == [
        (1, "Back Squat"),
        (2, "Romanian Deadlift"),
    ]
    assert exercises[0]["targetMuscleGroups"] == ["quadriceps", "glutes"]
    sets = rows(store, "session_sets")
    assert [(s["kind"], s["weightKg"], s["repFull"], s["repPartial"]) for s in sets] == [
        ("warmup", 40.0, 8, None),
        ("working", 100.0, 5, 0),
        ("working", 100.0, 4, 1),
        ("working", 80.0, 8, 0),
    ]
    loaded = store.load(session.session_id)
    assert loaded is not None and loaded.document() == session.document()


def test_a_changed_session_replaces_its_rows_and_an_unchanged_one_writes_nothing(
    store: SessionStore,
) -> None:
    payload = session_payload(4)
    first = parse_session(payload)
    store.save(first, "/x.json")
    created = rows(store, "training_sessions")[0]["createdAt"]
    assert not store.save(first, "/x.json").changed
    payload["exercises"] = payload["exercises"][:1]
    payload["exercises"][0]["workingSets"][0]["weightKg"] = 105.0
    outcome = store.save(parse_session(payload), "/x.json")
    assert outcome.changed and outcome.previous_athlete == "athlete-1"
    (row,) = rows(store, "training_sessions")
    assert row["version"] == 2 and row["createdAt"] == created
    assert [e["name"] for e in rows(store, "session_exercises")] == ["Back Squat"]
    assert [s["weightKg"] for s in rows(store, "session_sets")] == [40.0, 105.0, 100.0]


def test_a_failing_statement_is_a_persistence_error_and_leaves_nothing(
    store: SessionStore,
) -> None:
    with store.database.transaction(write=True) as connection:
        connection.execute(sa.text("DROP TABLE session_sets"))
    with pytest.raises(PersistenceError) as failed:
        store.save(parse_session(session_payload(5)), "/y.json")
    assert "session_sets" in str(failed.value)
    assert rows(store, "training_sessions") == [] and rows(store, "session_exercises") == []
