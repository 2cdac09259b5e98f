"""The recompute a command's changes need, queued as a worker's job would queue it: the
athletes are marked pending in the coordination state, and the first mark of a burst sends
one `recompute_pending` job through the broker, for whichever worker is (or later is) there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from storage.errors import PersistenceError
from storage.settings import Settings
from storage.stores import Stores
from tasks.jobs import queue_recompute
from workers.client import TrainlogClient


class CommandContext:
    """A JobContext for a command run outside a worker: its follow-up jobs go through a
    TrainlogClient opened on first use."""

    def __init__(self, stores: Stores) -> None:
        self._stores = stores
        self._client: TrainlogClient | None = None

    @property
    def stores(self) -> Stores:
        return self._stores

    @property
    def settings(self) -> Settings:
        return self._stores.settings

    @property
    def task_id(self) -> str | None:
        return None

    @property
    def worker(self) -> str | None:
        return None

    def enqueue(self, job: Callable[..., Any], *args: Any, countdown: float = 0) -> None:
        if self._client is None:
            self._client = TrainlogClient(self.settings)
        self._client.send_follow_up(job, *args, countdown=countdown)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def recompute_later(stores: Stores, since_by_athlete: dict[str, str]) -> bool:
    """Mark the athletes pending and, when no recompute is scheduled yet, queue one. False
    when the broker could not take it: the athletes stay pending in SQL, and the next change
    a worker handles (or the nightly rollup) recomputes them; a warning says so."""
    if not since_by_athlete:
        return True
    context = CommandContext(stores)
    try:
        queue_recompute(context, since_by_athlete)
    except PersistenceError as error:
        left = _left(stores, since_by_athlete)
        click.echo(
            f"warning: the metrics recompute could not be queued ({error}); {left}", err=True
        )
        return False
    finally:
        context.close()
    return True


def _left(stores: Stores, since_by_athlete: dict[str, str]) -> str:
    """What became of the athletes: pending in SQL (the next flush or the nightly rollup
    does them), or, where the database failed first, not marked at all."""
    try:
        unmarked = sorted(set(since_by_athlete) - set(stores.coordination.pending_athletes()))
    except PersistenceError:
        unmarked = sorted(since_by_athlete)
    if not unmarked:
        return (
            "the athletes stay pending, and the next change a worker handles or the nightly "
            "rollup recomputes them"
        )
    shown = ", ".join(unmarked[:10]) + (" ..." if len(unmarked) > 10 else "")
    return (
        f"not marked pending: {shown}; once the database is back, run `trainlog enqueue "
        "recompute_daily_metrics ATHLETE SINCE` for each (SINCE from recomputeFrom)"
    )
