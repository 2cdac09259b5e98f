"""The `trainlog` group and what every command shares: settings, errors, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

import click

from storage.errors import PersistenceError
from storage.settings import OPTIONS, Settings, load_settings, variable

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT = 1, 2, 3
EXIT_CODES = {"CONFIGURATION": EXIT_USAGE, "TIMEOUT": EXIT_TIMEOUT}


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(human(data) if human else _plain(data))


def _plain(data: Any, indent: str = "") -> str:
    if isinstance(data, dict):
        return "\n".join(
            f"{indent}{k}: "
            + (("\n" + _plain(v, indent + "  ")) if isinstance(v, dict | list) and v else str(v))
            for k, v in data.items()
        )
    if isinstance(data, list):
        return "\n".join(f"{indent}- {json.dumps(item, default=str)}" for item in data)
    return f"{indent}{data}"


def fail(error: dict[str, Any], as_json: bool, *, status: int | None = None) -> NoReturn:
    """End the command with `error` ({code, message, ...}): with --json as a JSON object on
    stdout (`{"error": {...}}`), else one line on stderr; exit `status`, else 1, 2 for a
    setting, 3 for a job not finished in time."""
    if as_json:
        click.echo(json.dumps({"error": error}, indent=2, default=str))
    else:
        click.echo(f"error: {error['code']}: {error['message']}", err=True)
    sys.exit(status or EXIT_CODES.get(str(error["code"]), EXIT_FAILED))


def handled(command: Callable[..., Any]) -> Callable[..., Any]:
    """PersistenceErrors end the command through `fail`, never as a traceback. An OS error
    the command did not expect says which file and why."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return command(*args, **kwargs)
        except PersistenceError as error:
            fail(error.to_dict(), as_json)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            message = f"{error.strerror or error}{where}"
            fail({"code": "UNAVAILABLE", "message": message}, as_json)
        except Exception as error:
            from celery.exceptions import ImproperlyConfigured

            if not isinstance(error, ImproperlyConfigured):
                raise
            # a result backend whose library is not installed (memcached, MongoDB, ...)
            fail({"code": "CONFIGURATION", "message": str(error)}, as_json)

    return run


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """trainlog: persistence jobs for training-log data (Celery + CSV + SQL)."""
    try:
        ctx.obj = load_settings()
    except PersistenceError as error:
        fail(error.to_dict(), "--json" in sys.argv[1:])


def settings_table() -> str:
    return "\n".join(
        f"{variable(name):<31} default {option.default!r:<14} {option.meaning}"
        for name, option in OPTIONS.items()
    )
