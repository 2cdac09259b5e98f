"""Commands over schema and reference data: migrate, seeds."""

from __future__ import annotations

import getpass
import socket

import click

from storage import migrations
from storage.sql.database import Database
from storage.stores import Stores
from tasks import maintenance
from workers.cli.base import emit, handled, main, settings_from


@main.command()
@click.argument(
    "action", type=click.Choice(["upgrade", "downgrade", "current", "history"]), default="upgrade"
)
@click.option("--target", default=None, help="revision (default: heads / base)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def migrate(ctx: click.Context, action: str, target: str | None, as_json: bool) -> None:
    """SQL schema via Alembic (upgrade also upgrades CSV headers)."""
    settings = settings_from(ctx)
    if action == "history":
        emit(migrations.history(), as_json)
        return
    database = Database(settings.database_url)
    try:
        if action == "current":
            emit(
                {
                    "current": migrations.current_revisions(database),
                    "heads": migrations.head_revisions(),
                },
                as_json,
            )
        elif action == "downgrade":
            emit(migrations.downgrade(database, target or "base"), as_json)
        elif target:
            emit(migrations.upgrade(database, target), as_json)
        else:
            emit(maintenance.apply_migrations(Stores(settings)), as_json)
    finally:
        database.dispose()


@main.command()
@click.argument("action", type=click.Choice(["check", "apply", "reset"]), default="check")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def seeds(ctx: click.Context, action: str, as_json: bool) -> None:
    """Bundled reference data: check (preview), apply, or reset to the factory rows."""
    from storage.seeds.sync import sync_seeds

    stores = Stores(settings_from(ctx))
    stores.initialize()
    actor = f"{getpass.getuser()}@{socket.gethostname()} (trainlog seeds {action})"
    report = sync_seeds(
        stores.database, apply=action != "check", reset=action == "reset", actor=actor
    )
    emit(
        report,
        as_json,
        lambda r: "\n".join(
            f"{name}: {len(d['added'])} added, {len(d['changed'])} changed, "
            f"{len(d['removed'])} removed, {len(d['kept'])} user-edited kept"
            + (" (applied)" if d["applied"] else "")
            for name, d in r.items()
        ),
    )
    stores.close()
