"""`trainlog web`: the reference-data and operations console, served by uvicorn."""

from __future__ import annotations

import click

from workers.cli.base import handled, main, settings_from


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.pass_context
@handled
def web(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web console (login: TRAINLOG_WEB_USER / TRAINLOG_WEB_PASSWORD; it does not
    start without a password)."""
    import uvicorn

    from workers.web.app import create_web_app

    app = create_web_app(settings_from(ctx))
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
