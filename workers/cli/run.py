"""Commands that start processes: worker, beat, flower, and the demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from storage.settings import MAX_WORKER_CONCURRENCY
from workers.cli.base import EXIT_USAGE, emit, handled, main, settings_from
from workers.config import CONSUMED_QUEUES, prepare_embedded_broker


def _celery(ctx: click.Context, args: list[str]) -> None:
    """Become `celery -A workers.app ...`, after checking here what Celery would report as a
    traceback (the embedded broker's folders)."""
    prepare_embedded_broker(settings_from(ctx))
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", *args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, MAX_WORKER_CONCURRENCY),
    help="pool processes  [default: TRAINLOG_WORKER_CONCURRENCY, else CPU cores + 1]",
)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handled
def worker(
    ctx: click.Context, concurrency: int | None, loglevel: str, celery_args: tuple[str, ...]
) -> None:
    """Start a worker on all queues (extra arguments go to `celery worker`). Without -c the
    app's worker_concurrency (the settings') applies."""
    _celery(
        ctx,
        [
            "worker",
            "-l",
            loglevel,
            *(["-c", str(concurrency)] if concurrency else []),
            "-Q",
            ",".join(CONSUMED_QUEUES),
            *celery_args,
        ],
    )


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handled
def beat(ctx: click.Context, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Start THE beat scheduler. Run exactly one per deployment, or periodic jobs run twice."""
    _celery(ctx, ["beat", "-l", loglevel, *celery_args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--port", type=click.IntRange(1, 65535), default=5555, show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
@handled
def flower(ctx: click.Context, port: int, celery_args: tuple[str, ...]) -> None:
    """Start Flower with basic auth (TRAINLOG_FLOWER_USER / TRAINLOG_FLOWER_PASSWORD)."""
    settings = settings_from(ctx)
    if not settings.flower_password:
        click.echo(
            "error: set TRAINLOG_FLOWER_PASSWORD; Flower does not run without auth", err=True
        )
        sys.exit(EXIT_USAGE)
    _celery(
        ctx,
        [
            "flower",
            f"--port={port}",
            f"--basic-auth={settings.flower_user}:{settings.flower_password}",
            *celery_args,
        ],
    )


@main.command()
@click.option("--months", type=click.IntRange(1, 36), default=6, show_default=True)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="where to write the PMC chart (default: <home>/pmc-demo-athlete.png)",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.pass_context
@handled
def demo(ctx: click.Context, months: int, chart: Path | None, as_json: bool) -> None:
    """Generate a realistic athlete, run it through a real worker and broker, chart it."""
    from workers.demo import run_demo
    from workers.report import check_chart_path

    if chart is not None:  # before the demo's minute of work, not after it
        check_chart_path(chart, "--chart")
    summary = run_demo(settings_from(ctx), months=months, chart=chart, quiet=as_json)
    emit(
        summary,
        as_json,
        lambda s: (
            f"demo athlete: {s['activities']} activities, {s['sessions']} strength sessions, "
            f"{s['plannedSessions']} planned sessions, {s['weeks']} weeks, in {s['seconds']}s\n"
            f"on {s['lastDate']}: fitness (CTL) {s['ctl']}, fatigue (ATL) {s['atl']}, "
            f"form (TSB) {s['tsb']}\n"
            f"session JSON files: {s['exportDir']}\nCSV tables: {s['dataDir']}\n"
            f"PMC chart: {s['chart']}"
        ),
    )
