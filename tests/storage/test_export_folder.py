"""Every worker host sees one export folder: a host with a folder of its own is refused,
naming both; a deliberate move is adopted; SQLite (one host) follows a changed setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import ConfigurationError
from storage.export_folder import IDENTITY_FILE, adopt_export_folder, check_export_folder
from storage.settings import Settings
from storage.stores import Stores


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
