"""The trainlog app plus two probe jobs for bench/job_cost.py: `probe.echo` takes a session
payload and does nothing with it; `probe.burn` spends a given CPU time in the pool child."""

from __future__ import annotations

import time
from typing import Any

from workers.app import create_app


def _echo(payload: Any) -> dict[str, bool]:
    return {"ok": payload is not None}


def _burn(ms: float) -> dict[str, bool]:
    stop = time.process_time() + ms / 1000
    while time.process_time() < stop:
        pass
    return {"ok": True}


def __getattr__(name: str) -> Any:
    if name == "app":
        app = create_app()
        app.task(name="probe.echo")(_echo)
        app.task(name="probe.burn")(_burn)
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
