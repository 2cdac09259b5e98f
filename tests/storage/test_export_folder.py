"""Every worker host sees one export folder: a host with a folder of its own is refused,
naming both; a deliberate move is adopted; SQLite (one host) follows a changed setting."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from storage.errors import ConfigurationError, Unavailable
from storage.export_folder import IDENTITY_FILE, adopt_export_folder, check_export_folder
from storage.settings import Settings
from storage.stores import Stores
from tasks import reconcile, sessions
from tests.factories import session_payload
from tests.services import postgres_database
from workers.health import check_all


def host(tmp_path: Path, name: str, database: str, exports: Path) -> Stores:
    """The storage one worker host would open: a home of its own, the shared database."""
    settings = Settings.for_home(tmp_path / name, database_url=database, export_dir=exports)
    stores = Stores(settings)
    stores.initialize()
    return stores


def test_hosts_sharing_the_folder_pass_and_one_with_its_own_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    shared = tmp_path / "mnt" / "exports"
    a, b = (host(tmp_path, n, postgres_url, shared) for n in ("a", "b"))
    c = host(tmp_path, "c", postgres_url, tmp_path / "c-local-exports")
    try:
        check_export_folder(a)
        check_export_folder(b)  # the same folder: the same identity file
        with pytest.raises(ConfigurationError) as refused:
            check_export_folder(c)
        message = str(refused.value)
        assert str(shared) in message and str(tmp_path / "c-local-exports") in message
        assert refused.value.code == "CONFIGURATION"
        adopt_export_folder(c)  # the folder was moved on purpose
        check_export_folder(c)
        with pytest.raises(ConfigurationError, match="c-local-exports"):
            check_export_folder(a)
    finally:
        for stores in (a, b, c):
            stores.close()


def test_the_identity_is_made_once_and_kept(tmp_path: Path, postgres_url: str) -> None:
    shared = tmp_path / "exports"
    a = host(tmp_path, "a", postgres_url, shared)
    try:
        check_export_folder(a)
        first = (shared / IDENTITY_FILE).read_text()
        check_export_folder(a)
        assert (shared / IDENTITY_FILE).read_text() == first
    finally:
        a.close()


def test_on_sqlite_a_changed_export_folder_is_adopted(settings: Settings) -> None:
    stores = Stores(settings)
    stores.initialize()
    moved = Stores(settings.with_(export_dir=settings.home / "elsewhere"))
    try:
        check_export_folder(stores)
        check_export_folder(moved)  # one host: the setting changed, nothing to refuse
        registered = moved.coordination.read_mark("export-folder") or ""
        assert "elsewhere" in registered
    finally:
        stores.close()
        moved.close()


def test_a_damaged_identity_is_named_and_adopting_replaces_it(
    tmp_path: Path, postgres_url: str
) -> None:
    shared = tmp_path / "exports"
    a = host(tmp_path, "a", postgres_url, shared)
    try:
        check_export_folder(a)
        (shared / IDENTITY_FILE).write_bytes(b"\xff\xfe\x00garbage\x80")
        with pytest.raises(ConfigurationError, match="is damaged") as refused:
            check_export_folder(a)
        assert "--adopt-folder" in str(refused.value)
        adopt_export_folder(a)
        check_export_folder(a)
    finally:
        a.close()


def test_a_deleted_identity_is_said_to_be_missing_not_another_folder(
    tmp_path: Path, postgres_url: str
) -> None:
    shared = tmp_path / "exports"
    a, b = (host(tmp_path, n, postgres_url, shared) for n in ("a", "b"))
    try:
        check_export_folder(a)
        (shared / IDENTITY_FILE).unlink()
        for _ in range(2):  # the refused start leaves no identity of its own behind
            with pytest.raises(ConfigurationError, match="had no identity file") as refused:
                check_export_folder(b)
            assert "--adopt-folder" in str(refused.value)
            assert not (shared / IDENTITY_FILE).exists()
    finally:
        a.close()
        b.close()


def test_a_save_into_a_folder_that_went_is_refused_and_retried(
    tmp_path: Path, postgres_url: str
) -> None:
    """An unmounted shared folder: gone, or an empty mount point, whether the process opened
    its storage before (a running pool process) or after (one whose first job comes now).
    Nothing is written (not the row, not a file in a folder only this host sees), and the
    error is transient."""
    shared = tmp_path / "mnt" / "exports"
    a = host(tmp_path, "a", postgres_url, shared)
    check_export_folder(a)  # the worker's start
    a.prepare()
    try:
        for unmount in ("move it away", "empty mount point"):
            shared.rename(tmp_path / "mnt" / "moved")
            if unmount == "empty mount point":
                shared.mkdir()
            later = Stores(a.settings)
            later.prepare()  # makes the folder again, empty
            for stores in (a, later):
                payload = session_payload(7, _id=str(uuid.uuid4()))
                with pytest.raises(Unavailable, match="not mounted"):
                    sessions.save_session(stores, payload)
                with pytest.raises(Unavailable, match="not mounted"):
                    reconcile.reconcile_exports(stores)
                assert stores.sessions.get(payload["_id"]) is None
            later.close()
            assert list(shared.iterdir()) == []
            shutil.rmtree(shared)
            (tmp_path / "mnt" / "moved").rename(shared)
            assert sessions.save_session(a, payload).changed  # mounted again: it goes through
    finally:
        a.close()


def test_doctor_says_what_a_worker_here_would_refuse(tmp_path: Path, postgres_url: str) -> None:
    """An export folder of its own, and a database below the schema's heads: `doctor` said
    ok to both while a worker there exited 3."""
    a = host(tmp_path, "a", postgres_url, tmp_path / "shared")
    check_export_folder(a)
    elsewhere = a.settings.with_(home=tmp_path / "c", export_dir=tmp_path / "c-exports")
    a.close()
    folders = check_all(elsewhere)["folders"]
    assert not folders["ok"] and "the workers use" in folders["detail"]
    assert check_all(a.settings)["folders"]["ok"]
    with postgres_database() as empty:
        database = check_all(elsewhere.with_(database_url=empty))["database"]
    assert not database["ok"] and "trainlog migrate" in database["detail"]
