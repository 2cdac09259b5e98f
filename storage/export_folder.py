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

from storage.errors import ConfigurationError
from storage.stores import Stores

log = logging.getLogger(__name__)
IDENTITY_FILE = ".trainlog-export-folder"
MARK = "export-folder"


def folder_identity(folder: Path) -> str:
    """The folder's identity, created once (of two hosts creating it at once, one wins)."""
    path = folder / IDENTITY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{IDENTITY_FILE}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(uuid.uuid4().hex + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_text().strip()


def _registration(identity: str, folder: Path) -> str:
    return json.dumps({"identity": identity, "host": socket.gethostname(), "path": str(folder)})


def check_export_folder(stores: Stores) -> None:
    """CONFIGURATION unless this host's export folder is the one registered in SQL (the first
    worker to start registers its own). An SQLite database serves one host only, so there a
    new folder (TRAINLOG_EXPORT_DIR changed) is adopted, with a warning."""
    folder = stores.settings.export_dir
    try:
        identity = folder_identity(folder)
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
    registration = _registration(folder_identity(folder), folder)
    stores.coordination.write_mark(MARK, registration)
    return dict(json.loads(registration))
