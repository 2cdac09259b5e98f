"""Commands over schema and reference data: migrate, seeds."""

from __future__ import annotations

import getpass
import socket
import sys

import click

from storage import migrations
from storage.errors import MigrationError
from storage.placement import register_table_placement
from storage.sql.database import Database
from storage.stores import Stores
from tasks import maintenance
from workers.cli.base import emit, handled, main, settings_from


@main.group(invoke_without_command=True)
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """SQL schema via Alembic, with Alembic's commands and revisions: upgrade [REV], downgrade
    REV, current, history, heads, check. Alone: upgrade to the heads (and CSV headers)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(upgrade_command, revision="heads", as_json=False)


def _database(ctx: click.Context) -> Database:
    return Database(settings_from(ctx.find_root()).database_url)


JSON = click.option("--json", "as_json", is_flag=True)


@migrate.command("upgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="heads")
@JSON
@click.pass_context
@handled
def upgrade_command(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Upgrade to REVISION (heads, head, +1, MODULE@head, a revision id; default heads). To
    the heads, CSV headers are upgraded too."""
    settings = settings_from(ctx.find_root())
    if revision in ("heads", "head"):
        emit(maintenance.apply_migrations(Stores(settings)), as_json)
        return
    database = _database(ctx)
    try:
        emit(migrations.upgrade(database, revision), as_json)
    finally:
        database.dispose()


@migrate.command("register-placement")
@JSON
@click.pass_context
@handled
def register_placement_command(ctx: click.Context, as_json: bool) -> None:
    """Register this TRAINLOG_TABLE_BACKENDS as the table placement every worker on the
    database must use (after moving tables on purpose; workers that differ refuse to start)."""
    stores = Stores(settings_from(ctx.find_root()))
    try:
        emit({"placement": register_table_placement(stores)}, as_json)
    finally:
        stores.close()


@migrate.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@click.option("--yes", is_flag=True, help="drop tables that hold rows without asking")
@JSON
@click.pass_context
@handled
def downgrade_command(ctx: click.Context, revision: str, yes: bool, as_json: bool) -> None:
    """Downgrade to REVISION (-1, MODULE@-1, base, MODULE@base, a revision id): there is no
    default. One that would drop tables holding rows asks first on a terminal, and
    otherwise needs --yes."""

    def allow(tables: list[str]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        return click.confirm(
            f"downgrade to {revision} drops {len(tables)} table(s) holding rows "
            f"({', '.join(tables)}). Drop them?",
            default=False,
        )

    database = _database(ctx)
    try:
        emit(migrations.downgrade(database, revision, allow_drop=allow), as_json)
    except MigrationError as error:
        if "nothing was changed" in error.message and not yes:
            raise MigrationError(f"{error.message}: confirm, or pass --yes") from None
        raise
    finally:
        database.dispose()


@migrate.command("current")
@JSON
@click.pass_context
@handled
def current_command(ctx: click.Context, as_json: bool) -> None:
    """The revisions the database is at, and the heads."""
    database = _database(ctx)
    try:
        state = {
            "current": migrations.current_revisions(database),
            "heads": migrations.head_revisions(),
        }
        emit(state, as_json)
    finally:
        database.dispose()


@migrate.command("history")
@JSON
@handled
def history_command(as_json: bool) -> None:
    """Every revision, newest first."""
    emit(migrations.history(), as_json)


@migrate.command("heads")
@JSON
@handled
def heads_command(as_json: bool) -> None:
    """The head revision of each module."""
    emit(migrations.head_revisions(), as_json)


@migrate.command("check")
@JSON
@click.pass_context
@handled
def check_command(ctx: click.Context, as_json: bool) -> None:
    """Fail (exit 1) when the table definitions and the revisions disagree."""
    database = _database(ctx)
    try:
        emit(migrations.check(database), as_json)
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
    stores.prepare()
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
