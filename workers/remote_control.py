"""Which of Celery's remote-control commands a trainlog worker obeys.

Anyone who can write to the broker can broadcast a command to every worker: Celery obeys
`shutdown`, `cancel_consumer`, `pool_restart`, `rate_limit` or `time_limit` from any client,
so one stray `celery control shutdown` (or a hostile producer) stopped every host. A trainlog
worker answers what only reads (the inspect commands Flower and `celery inspect` use), turns
its events on (Flower asks for them), takes a heartbeat and revokes a job by id; every other
command gets an error reply naming what to do instead. Workers are stopped with SIGTERM (a
container stop) and scaled by running more of them, and their limits are settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from storage.options import shown_url

Handler = Callable[..., Any]
DEBUG_INSPECTIONS = frozenset({"objgraph", "memdump", "memsample"})  # heavy, writes files
OBEYED_CONTROLS = frozenset({"enable_events", "heartbeat", "revoke"})
INSTEAD = (
    "stop a worker with SIGTERM (its container's stop), scale by running more workers, and "
    "set its limits with TRAINLOG_* settings"
)


def obeyed_handlers(
    handlers: Mapping[str, Handler], kinds: Mapping[str, str]
) -> dict[str, Handler]:
    """Celery's command handlers (`Panel.data`) with each command this worker does not obey
    replaced by a refusal; `kinds`: command name -> "inspect" or "control"."""
    obeyed: dict[str, Handler] = {}
    for name, handler in handlers.items():
        reads = kinds.get(name) == "inspect" and name not in DEBUG_INSPECTIONS
        obeyed[name] = handler if reads or name in OBEYED_CONTROLS else _refusal(name)
    if "revoke" in handlers:
        obeyed["revoke"] = _without_terminate(handlers["revoke"])
    if "conf" in handlers:
        obeyed["conf"] = _urls_shown(handlers["conf"])
    return obeyed


def _urls_shown(conf: Handler) -> Handler:
    """Celery hides a URL's user:password, not a `?password=` in its query."""

    def shown(state: Any, **options: Any) -> Any:
        reply = conf(state, **options)
        if isinstance(reply, dict):
            return {
                key: shown_url(value) if isinstance(value, str) and "://" in value else value
                for key, value in reply.items()
            }
        return reply

    return shown


def _refusal(name: str) -> Handler:
    def refuse(state: Any, **_: Any) -> dict[str, str]:
        return {"error": f"trainlog workers do not take the remote command {name!r}: {INSTEAD}"}

    return refuse


def _without_terminate(revoke: Handler) -> Handler:
    """Revoking a job not yet started is obeyed; killing the pool process that runs one
    (`terminate`) could stop it between a write and the next, so it is refused."""

    def revoke_queued(state: Any, task_id: Any, terminate: bool = False, **options: Any) -> Any:
        if terminate:
            return {
                "error": "trainlog workers do not terminate a running job (it could stop "
                "between two writes); revoke it without terminate, or stop the worker with "
                "SIGTERM, which lets running jobs finish"
            }
        return revoke(state, task_id, terminate=False, **options)

    return revoke_queued
