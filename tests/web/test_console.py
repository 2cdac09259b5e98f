"""Every page of the console and every refusal of its forms, through the ASGI client, on
SQLite and PostgreSQL; each change's audit row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from storage.errors import ConfigurationError
from storage.seeds.entries import entry_history, get_entry
from storage.settings import Settings
from tests.web.conftest import PASSWORD, Console, csrf_of, message_of
from workers.web.app import create_web_app

ENTRY = "/datasets/exercise_catalog/entries/back-squat"
EDIT = {
    "name": "Back Squat",
    "targetMuscleGroups": ["quadriceps", "glutes"],
    "category": "squat",
    "equipment": "barbell",
    "active": "on",
}


def test_without_a_password_the_console_does_not_start(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="TRAINLOG_WEB_PASSWORD"):
        create_web_app(settings)


def test_pages_need_a_login_but_the_health_check_does_not(settings: Settings) -> None:
    app = create_web_app(settings.with_(web_password=PASSWORD))
    with TestClient(app, follow_redirects=False) as client:
        for path in ("/datasets", ENTRY, "/operations", "/datasets/exercise_catalog/export"):
            assert client.get(path).headers["location"] == "/login", path
        assert client.get("/healthz").json()["status"] == "ok"
        page = client.get("/login")
        wrong = {"user": "admin", "password": "guess", "csrf": csrf_of(page.text)}
        assert client.post("/login", data=wrong).status_code == 401
        stale = {"user": "admin", "password": PASSWORD, "csrf": "forged"}
        assert client.post("/login", data=stale).status_code == 403
        headers = page.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        good = {"user": "admin", "password": PASSWORD, "csrf": csrf_of(page.text)}
        cookie = client.post("/login", data=good).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
    secret = settings.home / ".web-secret"
    assert secret.stat().st_mode & 0o777 == 0o600


def test_datasets_show_the_update_and_apply_it(console: Console) -> None:
    page = console.client.get("/datasets").text
    assert "An update is available: bundled 2099.1.1" in page
    preview = console.client.get("/datasets/exercise_catalog/update").text
    assert "trap-bar-jump" in preview and "front-squat" in preview and "safety bar" in preview
    database = console.stores.database
    assert get_entry(database, "exercise_catalog", "back-squat")["equipment"] == "barbell"
    done = console.client.post("/datasets/exercise_catalog/update", data={"csrf": console.csrf()})
    assert "bundled update applied (1 added, 1 changed, 1 deactivated" in message_of(done.text)
    assert get_entry(database, "exercise_catalog", "back-squat")["equipment"] == "safety bar"
    assert not get_entry(database, "exercise_catalog", "front-squat")["active"]
    assert "An update is available" not in console.client.get("/datasets").text


def test_entries_are_searched_filtered_and_paged(console: Console) -> None:
    squats = console.client.get("/datasets/exercise_catalog/entries?q=SQUAT").text
    assert "Back Squat" in squats and "Deadlift" not in squats
    lats = console.client.get("/datasets/exercise_catalog/entries?muscle=lats&active=yes").text
    assert "Pull" in lats and "Back Squat" not in lats
    first = console.client.get("/datasets/exercise_catalog/entries").text
    assert "page 1 of 3" in first and first.count("<tr") == 51  # a header and 50 entries
    assert "page 3 of 3" in console.client.get("/datasets/exercise_catalog/entries?page=9").text
    bad = console.client.get("/datasets/exercise_catalog/entries?muscle=toes&page=x")
    assert bad.status_code == 200  # an unknown filter value is ignored, not an error
    assert console.client.get("/datasets/nothing/entries").status_code == 404


def test_an_edit_needs_a_reason_and_writes_its_audit_row(console: Console) -> None:
    csrf = console.csrf(ENTRY)
    empty = console.client.post(ENTRY, data={**EDIT, "reason": "  ", "csrf": csrf})
    assert empty.status_code == 422 and "a reason is required" in message_of(empty.text)
    toes = console.client.post(
        ENTRY, data={**EDIT, "targetMuscleGroups": ["toes"], "reason": "x", "csrf": csrf}
    )
    assert toes.status_code == 422 and "'toes' is not a muscle group" in message_of(toes.text)
    forged = console.client.post(ENTRY, data={**EDIT, "reason": "x", "csrf": "forged"})
    assert forged.status_code == 403
    database = console.stores.database
    assert get_entry(database, "exercise_catalog", "back-squat")["source"] == "factory"
    assert entry_history(database, "exercise_catalog", "back-squat")[0]["action"] == "added"
    saved = console.client.post(ENTRY, data={**EDIT, "reason": "fewer groups", "csrf": csrf})
    assert saved.status_code == 200 and "fewer groups" in saved.text  # its history
    entry = get_entry(database, "exercise_catalog", "back-squat")
    assert entry["source"] == "user" and entry["targetMuscleGroups"] == ["quadriceps", "glutes"]
    latest = entry_history(database, "exercise_catalog", "back-squat")[0]
    assert latest["action"] == "edited" and latest["reason"] == "fewer groups"
    assert latest["changedBy"] == "admin (web console)"
    assert "lower back" in json.dumps(latest["previousValue"])
    restored = console.client.post(f"{ENTRY}/restore", data={"csrf": csrf})
    assert "restored to its factory value" in message_of(restored.text)
    entry = get_entry(database, "exercise_catalog", "back-squat")
    assert entry["source"] == "factory" and "lower back" in entry["targetMuscleGroups"]
    assert entry_history(database, "exercise_catalog", "back-squat")[0]["action"] == "restored"


def test_export_then_upload_previews_backs_up_and_applies(console: Console) -> None:
    exported = console.client.get("/datasets/exercise_catalog/export")
    assert "attachment" in exported.headers["content-disposition"]
    document = exported.json()
    document["entries"][0]["equipment"] = "landmine"
    document["entries"].append({"exerciseId": "sissy-squat", "name": "Sissy Squat",
                                "targetMuscleGroups": ["quadriceps"]})  # fmt: skip
    csrf = console.csrf()
    upload = {"file": ("mine.json", json.dumps(document).encode(), "application/json")}
    preview = console.client.post(
        "/datasets/exercise_catalog/import", data={"csrf": csrf}, files=upload
    )
    assert preview.status_code == 200 and "1 added, 1 changed" in preview.text
    database = console.stores.database
    assert (
        get_entry(database, "exercise_catalog", document["entries"][0]["exerciseId"])["equipment"]
        != "landmine"
    )
    applied = console.client.post("/datasets/exercise_catalog/import/apply", data={"csrf": csrf})
    notice = message_of(applied.text)
    assert "mine.json imported (1 added, 1 changed)" in notice
    backup_id = notice.rsplit("backup ", 1)[1].strip()
    backup = console.client.get(f"/datasets/exercise_catalog/backups/{backup_id}").json()
    assert all(e["equipment"] != "landmine" for e in backup["entries"])
    assert get_entry(database, "exercise_catalog", "sissy-squat")["source"] == "user"
    again = console.client.post("/datasets/exercise_catalog/import/apply", data={"csrf": csrf})
    assert again.status_code == 422  # applied once: nothing waits any more


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "is not a JSON file"),
        (b'{"entries": [{"exerciseId": "x"}]}', "needs a name"),
        (b'{"dataset": "session_templates", "entries": []}', "holds the dataset"),
        (b'{"entries": [{"exerciseId": "x", "name": "X", "colour": "red"}]}', "unknown field"),
        (b"x" * 50_000_000, "is larger than"),
        (b"[" * 100_000 + b"]" * 100_000, "is not a JSON file"),  # past the recursion limit
        (b'{"entries": ' + b"[" * 500 + b"]" * 500 + b"}", "levels deep"),
    ],
    ids=["not-json", "no-name", "other-dataset", "unknown-field", "50-MB", "deep", "nested"],
)
def test_a_bad_upload_is_a_message_and_nothing_is_written(
    console: Console, content: bytes, why: str
) -> None:
    before = console.client.get("/datasets/exercise_catalog/export").json()["entries"]
    upload = {"file": ("bad.json", content, "application/json")}
    answer = console.client.post(
        "/datasets/exercise_catalog/import", data={"csrf": console.csrf()}, files=upload
    )
    assert answer.status_code == 422 and why in answer.text
    assert console.client.get("/datasets/exercise_catalog/export").json()["entries"] == before


def test_an_upload_saved_with_a_byte_order_mark_is_read(console: Console) -> None:
    exported = console.client.get("/datasets/exercise_catalog/export").content
    upload = {"file": ("catalog.json", b"\xef\xbb\xbf" + exported, "application/json")}
    answer = console.client.post(
        "/datasets/exercise_catalog/import", data={"csrf": console.csrf()}, files=upload
    )
    assert answer.status_code == 200, answer.text[:500]


def test_a_factory_reset_needs_its_confirmation(console: Console) -> None:
    csrf = console.csrf(ENTRY)
    console.client.post(ENTRY, data={**EDIT, "reason": "mine", "csrf": csrf})
    page = console.client.get("/datasets/exercise_catalog/reset")
    assert "Type <strong>exercise_catalog</strong>" in page.text
    refused = console.client.post(
        "/datasets/exercise_catalog/reset", data={"csrf": csrf, "confirm": "yes"}
    )
    assert refused.status_code == 422
    database = console.stores.database
    assert get_entry(database, "exercise_catalog", "back-squat")["source"] == "user"
    done = console.client.post(
        "/datasets/exercise_catalog/reset", data={"csrf": csrf, "confirm": "exercise_catalog"}
    )
    assert "reset to the factory entries" in message_of(done.text)
    assert get_entry(database, "exercise_catalog", "back-squat")["source"] == "factory"


def test_operations_show_failures_redacted_pending_recomputes_and_checks(console: Console) -> None:
    from datetime import date

    from tasks.failures import record_failure

    record_failure(
        console.stores,
        task_id="t-1",
        task_name="trainlog.upsert_rows",
        args=["tokens", [{"athleteId": "a", "provider": "strava", "accessToken": "s3cr3t-value"}]],
        kwargs={},
        error=ValueError("boom"),
    )
    console.stores.coordination.mark_pending("athlete-ops", date(2026, 3, 1))
    page = console.client.get("/operations").text
    assert "trainlog.upsert_rows" in page and "t-1" in page
    assert "s3cr3t-value" not in page
    assert "athlete-ops from 2026-03-01" in page
    for check in ("broker", "database"):
        assert f"<th>{check}</th>" in page


def test_trainlog_web_serves_the_console_and_refuses_without_a_password(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from click.testing import CliRunner

    from tests.web.test_browser import free_port
    from workers.cli import main

    refused = CliRunner().invoke(main, ["web"], env={"TRAINLOG_HOME": str(tmp_path)})
    assert refused.exit_code == 2 and "TRAINLOG_WEB_PASSWORD" in refused.output
    port = free_port()
    env = {**os.environ, "TRAINLOG_HOME": str(tmp_path), "TRAINLOG_WEB_PASSWORD": PASSWORD}
    server = subprocess.Popen(
        [sys.executable, "-m", "workers", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, answer = time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    answer = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert answer is not None and answer["status"] == "ok"
    finally:
        server.terminate()
        server.wait(10)
