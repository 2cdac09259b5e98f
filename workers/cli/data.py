"""Commands over the data itself: import-sessions, export."""

from __future__ import annotations

import sys

import click
from tqdm import tqdm

from storage.stores import Stores
from tasks import reconcile, sessions
from workers.cli.base import EXIT_FAILED, emit, handled, main, settings_from
from workers.cli.follow_up import recompute_later


@main.command("import-sessions")
@click.argument("folder")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def import_sessions(ctx: click.Context, folder: str, as_json: bool) -> None:
    """Import every session JSON file of FOLDER (inside TRAINLOG_IMPORT_DIR) into SQL.

    As the `import_sessions` job does, it marks the athletes whose metrics changed (listed
    under `recomputeFrom`) pending and queues their recompute for a worker
    (`recomputeQueued`). Exits 1 when any file was refused."""
    stores = Stores(settings_from(ctx))
    stores.prepare()
    root = sessions.allowed_import_folder(stores, folder)
    total = len(list(root.glob("*.json")))
    with tqdm(total=total, unit="file", disable=as_json) as bar:
        result = sessions.import_sessions(
            stores, str(root), progress=lambda n: bar.update(n) and None
        )
    result["recomputeQueued"] = recompute_later(stores, result["recomputeFrom"])
    emit(result, as_json)
    if result["errors"]:
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("session_ids", nargs=-1)
@click.option(
    "--adopt-folder",
    is_flag=True,
    help="register this host's export folder as the one every worker must see (after a move)",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def export(
    ctx: click.Context, session_ids: tuple[str, ...], adopt_folder: bool, as_json: bool
) -> None:
    """(Re)write session JSON files: the given ids, or repair every divergence (the metrics
    of sessions it imports are queued for a recompute, as by import-sessions). Only on a host
    that sees the workers' export folder."""
    from storage.export_folder import adopt_export_folder, check_export_folder

    stores = Stores(settings_from(ctx))
    stores.prepare()
    if adopt_folder:
        emit(adopt_export_folder(stores), as_json)
        return
    check_export_folder(stores)
    if session_ids:
        emit([sessions.export_session_json(stores, sid) for sid in session_ids], as_json)
    else:
        result = reconcile.reconcile_exports(stores)
        result["recomputeQueued"] = recompute_later(stores, result["recomputeFrom"])
        emit(result, as_json)
