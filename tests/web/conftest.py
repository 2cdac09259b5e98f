"""The web console on SQLite and PostgreSQL, logged in through its own form, and a newer
bundled catalog (a test package) to update to."""

from __future__ import annotations

import html as html_module
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from storage.seeds.sync import ensure_imported
from storage.settings import Settings
from storage.stores import Stores
from workers.web.app import create_web_app

PASSWORD = "correct horse battery"
TEST_BUNDLE = "trainlog_test_bundle"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def message_of(html: str) -> str:
    found = re.search(r'class="(?:error|notice)"[^>]*>(.*?)</p>', html, re.S)
    return html_module.unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else ""


@pytest.fixture
def newer_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bundled datasets with one catalog entry changed, one added, one removed."""
    root = tmp_path / "bundle"
    package = root / TEST_BUNDLE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = resources.files("storage.seeds.data")
    for name in ("exercise_catalog.json", "session_templates.json"):
        shutil.copyfile(str(source / name), package / name)
    catalog = json.loads((package / "exercise_catalog.json").read_text())
    catalog["version"] = "2099.1.1"
    entries = catalog["entries"]
    entries[0]["equipment"] = "safety bar"  # back-squat changed
    removed = entries.pop(1)["exerciseId"]  # front-squat removed
    entries.append({"exerciseId": "trap-bar-jump", "name": "Trap Bar Jump",
                    "targetMuscleGroups": ["quadriceps", "core"], "category": "squat",
                    "equipment": "barbell"})  # fmt: skip
    (package / "exercise_catalog.json").write_text(json.dumps(catalog))
    monkeypatch.syspath_prepend(str(root))
    assert removed == "front-squat"
    return TEST_BUNDLE


@dataclass
class Console:
    client: TestClient
    stores: Stores
    settings: Settings

    def csrf(self, path: str = "/datasets") -> str:
        return csrf_of(self.client.get(path).text)


def open_console(settings: Settings, package: str | None = None) -> Iterator[Console]:
    stores = Stores(settings)
    stores.initialize()
    ensure_imported(stores.database)  # imported from the installed bundle, as in production
    extra = {"seeds_package": package} if package else {}
    with TestClient(create_web_app(settings, **extra), follow_redirects=True) as client:
        login = client.get("/login")
        done = client.post(
            "/login", data={"user": "admin", "password": PASSWORD, "csrf": csrf_of(login.text)}
        )
        assert done.status_code == 200 and done.url.path == "/datasets", done.text[-600:]
        yield Console(client, stores, settings)
    stores.close()


@pytest.fixture
def console(sql_settings: Settings, newer_bundle: str) -> Iterator[Console]:
    yield from open_console(sql_settings.with_(web_password=PASSWORD), newer_bundle)
