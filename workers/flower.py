"""Flower with credentials, however it is started. Flower serves job arguments, results and
tracebacks on its UI and `/tasks/datatable` to anyone when no auth is set (only its `/api/*`
answers 401 by default), so `celery -A workers.app flower` gets the basic auth of
TRAINLOG_FLOWER_USER / TRAINLOG_FLOWER_PASSWORD, and refuses to start when neither those nor
Flower's own auth options (--basic-auth, --auth, FLOWER_BASIC_AUTH, a flowerconfig.py) give
it any. `/metrics` and `/healthcheck` stay open: Flower serves them without auth by design,
so keep Flower's port off public networks (compose binds it to 127.0.0.1)."""

from __future__ import annotations

import os
import sys
from typing import Any

from storage.settings import Settings

REFUSAL = (
    "error: CONFIGURATION: Flower shows job arguments, results and tracebacks: set "
    "TRAINLOG_FLOWER_PASSWORD (and TRAINLOG_FLOWER_USER, default admin), or pass Flower "
    "--basic-auth=user:password"
)


def starting_flower(argv: list[str]) -> bool:
    """Whether this process is `celery ... flower ...`."""
    return "flower" in argv[1:]


def require_credentials(settings: Settings) -> None:
    """Give Flower trainlog's basic auth, and make it refuse to start with no auth at all."""
    if settings.flower_password and not os.environ.get("FLOWER_BASIC_AUTH"):
        os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password}"
    import flower.app

    start = flower.app.Flower.__init__
    if getattr(start, "requires_credentials", False):
        return

    def checked(self: Any, *args: Any, **kwargs: Any) -> None:
        options = kwargs.get("options")
        if options is not None and not (options.basic_auth or options.auth):
            print(REFUSAL, file=sys.stderr)
            raise SystemExit(2)
        start(self, *args, **kwargs)

    checked.requires_credentials = True  # type: ignore[attr-defined]
    flower.app.Flower.__init__ = checked  # type: ignore[method-assign]
