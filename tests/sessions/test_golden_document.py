"""The original design's example session document (tests/sessions/golden/) is imported and
exported back with its values and JSON types unchanged; a session is hashed as received, so
a catalog change that fills its muscle groups differently does not make it a new version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from storage.stores import Stores
from tasks import sessions
from tasks.rows import upsert_rows
from tests.factories import session_payload

GOLDEN = Path(__file__).parent / "golden" / "training_session_2026_02_16_3fcb25c2.json"


def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def same_types(left: Any, right: Any) -> bool:
    """Equal, and every value of the same JSON type (20 and 20.0 are not the same here)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same_types(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same_types, left, right))
    return bool(left == right)


def without_groups(document: dict[str, Any]) -> dict[str, Any]:
    exercises = [{**e, "targetMuscleGroups": None} for e in document["exercises"]]
    return {**document, "exercises": exercises}


def test_the_original_document_is_imported_and_exported_unchanged(stores: Stores) -> None:
    folder = stores.settings.import_dir / "original"
    folder.mkdir(parents=True)
    shutil.copy(GOLDEN, folder / GOLDEN.name)
    result = sessions.import_sessions(stores, str(folder))
    assert result["imported"] == 1 and result["errors"] == []
    exported = json.loads((stores.settings.export_dir / GOLDEN.name).read_text())
    # every field as written (an integer phase, "0.0.1", 20 kg), muscle groups filled
    assert same_types(without_groups(exported), without_groups(golden()))
    groups = exported["exercises"][0]["targetMuscleGroups"]  # its "Barbell Bench Press"
    assert groups and groups == stores.muscle_lookup("Bench Press")
    again = sessions.import_sessions(stores, str(stores.settings.export_dir))
    assert again["imported"] == 0 and again["unchanged"] == 1  # its own export reads back


def test_the_original_document_is_a_valid_save_payload(stores: Stores) -> None:
    payload = {**golden(), "phase": 1}
    del payload["dataModelVersion"], payload["dataModelType"]
    saved = sessions.save_session(stores, payload)
    document = json.loads(Path(saved.json_path).read_text())
    assert document["phase"] == 1 and document["week"] == 5
    assert document["exercises"][0]["workingSets"][0]["weightKg"] == 80  # an int still
    assert document["exercises"][0]["workingSets"][0]["actualRestMinutes"] is None
    assert stores.sessions.load(saved.session_id).phase == 1


def test_a_text_phase_still_works(stores: Stores) -> None:
    saved = sessions.save_session(stores, session_payload(5, phase="build"))
    assert json.loads(Path(saved.json_path).read_text())["phase"] == "build"


def test_the_same_payload_after_a_catalog_change_is_unchanged(stores: Stores) -> None:
    stores = Stores(stores.settings.with_(catalog_refresh=0))
    stores.initialize()
    payload = session_payload(6)
    payload["exercises"][0]["targetMuscleGroups"] = []  # Back Squat: filled from the catalog
    first = sessions.save_session(stores, payload)
    before = json.loads(Path(first.json_path).read_text())["exercises"][0]["targetMuscleGroups"]
    upsert_rows(
        stores,
        "exercise_catalog",
        [{"exerciseId": "back-squat", "name": "Back Squat", "targetMuscleGroups": ["legs"]}],
    )
    again = sessions.save_session(stores, payload)
    assert not again.changed and before != ["legs"]
    assert stores.sessions.get(first.session_id).version == 1
    stores.close()
