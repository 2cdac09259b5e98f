"""Commands that talk to the pipeline: enqueue, failures, undeliverable, doctor, report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from storage.errors import CorruptFile, ValidationError
from storage.file_reads import read_bounded
from storage.sessions.exports import EXPORT_SIZE_FACTOR
from storage.stores import Stores
from workers.cli.base import (
    EXIT_FAILED,
    EXIT_USAGE,
    emit,
    fail,
    handled,
    main,
    settings_from,
    settings_table,
)


def _json_argument(text: str, what: str, limit: int) -> Any:
    if text.startswith("@"):
        name = text[1:]
        raw = read_bounded(Path(name), limit, what=f"{what} ({name})")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"{what}: {name} is not UTF-8 text", field=what) from None
    try:
        return json.loads(text)  # too deep to send: TrainlogClient.send refuses it
    except (ValueError, RecursionError) as error:  # RecursionError: "[[[…" nested too deep
        if text.lstrip().startswith(("{", "[", '"')):  # meant as JSON: say what is wrong
            raise ValidationError(f"{what} is not valid JSON: {error}", field=what) from None
        return text  # a bare word such as an athlete id


def _finite(seconds: float) -> float:
    """click's range lets NaN through (it compares false with both ends): a wait forever."""
    if not math.isfinite(seconds):
        raise click.BadParameter(f"{seconds} is not a number of seconds")
    return seconds


class _ListsJobs(click.Command):
    """`trainlog enqueue --help` ends with the public jobs and their arguments (the
    registry's, read only when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from tasks.registry import JOBS

        with formatter.section("Jobs"):
            formatter.write_dl([(j.short, " ".join(j.arguments) or "-") for j in JOBS if j.public])


@main.command(cls=_ListsJobs)
@click.argument("job")
@click.argument("args", nargs=-1)
@click.option("--kwargs", "kwargs_text", default="{}", help="keyword arguments as JSON")
@click.option("--wait", is_flag=True, help="block until the result is back")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 86400),
    default=300,
    show_default=True,
    callback=lambda _ctx, _param, value: _finite(value),
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def enqueue(
    ctx: click.Context,
    job: str,
    args: tuple[str, ...],
    kwargs_text: str,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Send JOB (e.g. save_session @session.json) by its public name. An unknown job or an
    argument that cannot be read or sent exits 2; with --wait, a job that failed exits 1
    with its error, one not finished within --timeout exits 3."""
    from workers.client import TrainlogClient

    settings = settings_from(ctx)
    limit = EXPORT_SIZE_FACTOR * settings.max_payload_bytes
    try:
        kwargs = _json_argument(kwargs_text, "--kwargs", limit)
        if not isinstance(kwargs, dict):
            raise ValidationError("--kwargs must be a JSON object", field="--kwargs")
        arguments = [_json_argument(a, f"argument {i + 1}", limit) for i, a in enumerate(args)]
    except (ValidationError, CorruptFile) as error:  # the command line is wrong, not a job
        fail(error.to_dict(), as_json, status=EXIT_USAGE)
    client = TrainlogClient(settings)
    try:
        try:
            result = client.send(job, *arguments, **kwargs)
        except ValidationError as error:  # no such job, or arguments no message can carry
            fail(error.to_dict(), as_json, status=EXIT_USAGE)
        if not wait:
            emit({"taskId": result.id, "job": job}, as_json)
            return
        value = client.wait(result, timeout, propagate=False)
        if result.failed():
            text = str(value)
            code, _, message = text.partition(": ")
            if not (code.isupper() and message):
                code, message = "INTERNAL", f"{type(value).__name__}: {text}"
            fail(
                {"code": code, "message": f"{job} failed: {message}", "taskId": result.id},
                as_json,
            )
        emit({"taskId": result.id, "job": job, "result": value}, as_json)
    finally:
        client.close()


@main.command()
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def failures(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List recorded job failures, newest first."""
    from tasks.failures import list_failures

    stores = Stores(settings_from(ctx))
    stores.prepare()
    rows = list_failures(stores, limit)
    if as_json:
        emit(rows, True)
        return
    if not rows:
        click.echo("no failures recorded")
    for row in rows:
        click.echo(
            f"{row['failedAt']:%Y-%m-%d %H:%M:%S}  {row['taskName']:<32} "
            f"{row['errorCode']:<18} {row['taskId']}\n    {row['error']}"
        )


@main.command()
@click.argument("action", type=click.Choice(["list", "purge"]), default="list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def undeliverable(ctx: click.Context, action: str, limit: int, as_json: bool) -> None:
    """Messages no worker could run, newest first, with the reason (list), or remove them all
    once looked at (purge). `trainlog doctor` fails while any are kept."""
    from workers.queues import list_undeliverable, purge_undeliverable

    settings = settings_from(ctx)
    if action == "purge":
        emit({"purged": purge_undeliverable(settings)}, as_json)
        return
    entries = list_undeliverable(settings, limit)
    if as_json:
        emit(entries, True)
        return
    if not entries:
        click.echo("no message set aside")
    for entry in entries:
        message = entry.get("message")
        headers = message.get("headers") if isinstance(message, dict) else None
        headers = headers if isinstance(headers, dict) else {}
        click.echo(
            f"{entry.get('setAsideAt') or '?':<32} queue {entry.get('queue') or '?':<12} "
            f"{str(headers.get('task', '?'))[:40]:<32} {str(headers.get('id', ''))[:40]}\n"
            f"    {entry.get('reason')}"
        )


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--settings", "show_settings", is_flag=True, help="list every setting and default")
@click.pass_context
@handled
def doctor(ctx: click.Context, as_json: bool, show_settings: bool) -> None:
    """Check the broker, the database and the folders; exit 1 if any is unhealthy."""
    from workers.health import check_all

    if show_settings:
        click.echo(settings_table())
        return
    report = check_all(settings_from(ctx))
    emit(
        report,
        as_json,
        lambda r: "\n".join(
            f"{'ok  ' if c['ok'] else 'FAIL'} {name:<10} {c['detail']}" for name, c in r.items()
        ),
    )
    if not all(check["ok"] for check in report.values()):
        sys.exit(EXIT_FAILED)


@main.command()
@click.argument("athlete")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pmc.png"),
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handled
def report(ctx: click.Context, athlete: str, out: Path, as_json: bool) -> None:
    """Draw ATHLETE's Performance Management Chart (CTL, ATL, TSB, daily load) as a PNG."""
    from workers.report import draw_pmc

    emit(draw_pmc(Stores(settings_from(ctx)), athlete, out), as_json)
