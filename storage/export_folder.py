"""Every worker host must see one export folder: the session JSON files are what a recovery
restores from, and a host writing to a folder of its own would leave the others' copies stale
and `reconcile_exports` writing second ones. The folder carries an identity file; the first
worker registers it in SQL, and a worker whose folder carries another identity refuses to
start, naming both folders."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from pathlib import Path

from storage.errors import ConfigurationError, Unavailable
from storage.stores import Stores

log = logging.getLogger(__name__)
IDENTITY_FILE = ".trainlog-export-folder"
IDENTITY_CHARS = 32  # a uuid4's hex
MARK = "export-folder"


def folder_identity(folder: Path, *, renew_damaged: bool = False) -> tuple[str, bool]:
    """The folder's identity and whether this call created it (of two hosts creating it at
    once, one wins). A damaged identity file is CONFIGURATION, or replaced when
    `renew_damaged` (an operator adopting the folder)."""
    path = folder / IDENTITY_FILE
    created = False
    if not path.exists():
        created = _create_identity(folder, path)
    identity = _read_identity(path)
    if identity is None and renew_damaged:
        path.unlink(missing_ok=True)
        created = _create_identity(folder, path)
        identity = _read_identity(path)
    if identity is None:
        raise ConfigurationError(
            f"the export folder's identity file {path} is damaged (not a trainlog identity): "
            "restore it from a backup, or run `trainlog export --adopt-folder` on a host that "
            "sees the folder every worker must use",
            path=str(path),
        )
    return identity, created


def _create_identity(folder: Path, path: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{IDENTITY_FILE}.{uuid.uuid4().hex}.tmp"
    temporary.write_text(uuid.uuid4().hex + "\n")
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)


def _read_identity(path: Path) -> str | None:
    text = path.read_bytes().strip()
    if len(text) == IDENTITY_CHARS and all(c in b"0123456789abcdef" for c in text):
        return text.decode()
    return None


def check_export_folder_present(stores: Stores) -> None:
    """UNAVAILABLE (retried) when the export folder is missing, or, once a worker registered
    it, its identity file is (a shared folder not mounted leaves an empty mount point), so no
    session file lands in a folder only this host sees."""
    folder = stores.settings.export_dir
    if not folder.is_dir() or (
        stores.export_folder_registered and not (folder / IDENTITY_FILE).exists()
    ):
        raise Unavailable(
            f"the export folder {folder} is missing or no longer holds its identity file "
            f"{IDENTITY_FILE} (a shared folder that is not mounted?); nothing was written, "
            "and the job is retried",
            path=str(folder),
        )


def _registration(identity: str, folder: Path) -> str:
    return json.dumps({"identity": identity, "host": socket.gethostname(), "path": str(folder)})


def check_export_folder(stores: Stores) -> None:
    """CONFIGURATION unless this host's export folder is the one registered in SQL (the first
    worker to start registers its own). An SQLite database serves one host only, so there a
    new folder (TRAINLOG_EXPORT_DIR changed) is adopted, with a warning."""
    folder = stores.settings.export_dir
    try:
        identity, created = folder_identity(folder)
    except OSError as error:
        raise ConfigurationError(
            f"cannot read or create the export folder's identity in {folder}: "
            f"{error.strerror} (TRAINLOG_EXPORT_DIR must be a writable folder)",
            path=str(folder),
        ) from None
    registered = json.loads(stores.coordination.claim_mark(MARK, _registration(identity, folder)))
    if registered["identity"] != identity and stores.database.dialect == "sqlite":
        log.warning("export folder moved from %s to %s: adopted", registered["path"], folder)
        adopt_export_folder(stores)
        return
    if registered["identity"] != identity and created:
        (folder / IDENTITY_FILE).unlink(missing_ok=True)  # not ours to leave in that folder
    if registered["identity"] != identity and created and registered["path"] == str(folder):
        raise ConfigurationError(
            f"the export folder {folder} had no identity file ({IDENTITY_FILE}), though the "
            f"workers registered this path on {registered['host']}: if it is that folder and "
            "its identity file was deleted, run `trainlog export --adopt-folder` here; if the "
            "shared folder is not mounted on this host, mount it",
            path=str(folder),
            field="export_dir",
        )
    elif registered["identity"] != identity:
        raise ConfigurationError(
            f"this worker's export folder {folder} on {socket.gethostname()} is not the one "
            f"the other workers use ({registered['path']} on {registered['host']}): mount "
            "that folder here and point TRAINLOG_EXPORT_DIR at it (every host must see one "
            "export folder), or, if the folder was moved on purpose, run `trainlog export "
            "--adopt-folder` on a host that sees the new one",
            path=str(folder),
            field="export_dir",
        )


def adopt_export_folder(stores: Stores) -> dict[str, str]:
    """Register this host's export folder as the one every worker must see."""
    folder = stores.settings.export_dir
    registration = _registration(folder_identity(folder, renew_damaged=True)[0], folder)
    stores.coordination.write_mark(MARK, registration)
    return dict(json.loads(registration))


def export_folder_problem(stores: Stores) -> str | None:
    """What would keep a worker of this host from starting on its export folder, found
    without writing anything (for `trainlog doctor`); None when nothing would. One SQLite
    host adopts a changed folder, so there is nothing to find."""
    if stores.database.dialect == "sqlite":
        return None
    mark = stores.coordination.read_mark(MARK)
    if mark is None:
        return None  # the first worker registers its folder
    registered = json.loads(mark)
    folder, path = stores.settings.export_dir, stores.settings.export_dir / IDENTITY_FILE
    where = f"{registered['path']} on {registered['host']}"
    try:
        identity = _read_identity(path) if path.exists() else ""
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if identity == "":
        return f"{folder} has no identity file ({IDENTITY_FILE}); the workers use {where}"
    if identity is None:
        return f"the identity file {path} is damaged (see `trainlog export --adopt-folder`)"
    if identity != registered["identity"]:
        return f"{folder} is not the export folder the workers use ({where})"
    return None
