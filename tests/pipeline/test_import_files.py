"""import_sessions meets files nobody exported, through a real worker: a FIFO, a 2 GB sparse
file and a folder are refused one by one, without being read, while the rest import; and a
session near the payload limit is restored from its own (larger, indented) export."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from storage.sessions.exports import export_bytes
from storage.sessions.model import parse_session
from tests.factories import session_payload
from tests.pipeline.conftest import Pipeline


def large_session(n: int) -> dict[str, Any]:
    """~660 KB of compact JSON: 150 exercises of 20 working sets with notes."""
    payload = session_payload(n, _id=str(uuid.uuid4()), userId="import-large")
    template = payload["exercises"][0]["workingSets"][0]
    sets = [{**template, "set": s, "notes": "steady tempo, " * 6} for s in range(20)]
    payload["exercises"] = [
        {"Order": order, "Name": f"Exercise {order}", "targetMuscleGroups": ["core"],
         "warmupSets": [], "workingSets": sets}
        for order in range(150)
    ]  # fmt: skip
    return payload


def test_special_and_oversized_files_are_refused_one_by_one(pipeline: Pipeline) -> None:
    folder = pipeline.settings.import_dir / f"hostile-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    good = parse_session(session_payload(61, _id=str(uuid.uuid4()), userId="import-ok"))
    (folder / "good.json").write_bytes(export_bytes(good.document()))
    os.mkfifo(folder / "pipe.json")
    with open(folder / "sparse.json", "wb") as handle:
        handle.truncate(2 << 30)  # 2 GB of nothing, on disk in no time
    (folder / "folder.json").mkdir()
    started = time.monotonic()
    result = pipeline.client.run("import_sessions", str(folder), timeout=120)
    assert time.monotonic() - started < 60  # nothing read whole, nothing blocked
    assert result["imported"] == 1
    errors = {entry["file"]: entry["error"] for entry in result["errors"]}
    assert set(errors) == {"pipe.json", "sparse.json", "folder.json"}
    assert "is a FIFO, not a regular file" in errors["pipe.json"]
    assert "2,147,483,648 bytes; the limit is" in errors["sparse.json"]
    assert "is a folder" in errors["folder.json"]
    assert all(text.startswith("VALIDATION:") for text in errors.values())
    assert pipeline.stores.sessions.get(good.session_id) is not None


def test_a_large_session_is_restored_from_its_own_export(pipeline: Pipeline) -> None:
    payload = large_session(62)
    size = len(json.dumps(payload))
    assert 600_000 < size < pipeline.settings.max_payload_bytes
    saved = pipeline.client.run("save_session", payload, timeout=120)
    exported = os.path.getsize(saved["jsonPath"])
    assert exported > pipeline.settings.max_payload_bytes  # the indented file is larger
    database = pipeline.stores.database
    with database.transaction(write=True) as connection:  # the rows are lost: a restore
        for table in ("session_sets", "session_exercises", "training_sessions"):
            connection.execute(
                sa.text(f'DELETE FROM {table} WHERE "sessionId" = :sid'), {"sid": payload["_id"]}
            )
    assert pipeline.stores.sessions.get(payload["_id"]) is None
    folder = pipeline.settings.import_dir / f"restore-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    os.link(saved["jsonPath"], folder / os.path.basename(saved["jsonPath"]))
    result = pipeline.client.run("import_sessions", str(folder), timeout=120)
    assert result == {"imported": 1, "unchanged": 0, "errors": []}
    restored = pipeline.stores.sessions.load(payload["_id"])
    assert restored is not None and len(restored.exercises) == 150


def test_the_original_design_document_imports_through_a_worker(pipeline: Pipeline) -> None:
    golden = Path(__file__).parents[1] / "sessions" / "golden"
    folder = pipeline.settings.import_dir / f"golden-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    source = golden / "training_session_2026_02_16_3fcb25c2.json"
    (folder / source.name).write_bytes(source.read_bytes())
    result = pipeline.client.run("import_sessions", str(folder), timeout=60)
    assert result["errors"] == [] and result["imported"] + result["unchanged"] == 1
    exported = json.loads((pipeline.settings.export_dir / source.name).read_text())
    assert exported["phase"] == 2 and exported["dataModelVersion"] == "0.0.1"
    assert exported["exercises"][0]["warmupSets"][0]["weightKg"] == 20
