"""The trainlog app with save_session's parts timed inside each pool process, for
bench/save_phases.py. Each process adds up wall and CPU seconds per part, and for every job
from task_prerun to task_postrun (Celery's result stores included) and the idle time before
it, and writes the totals to `$BENCH_PHASES_DIR/<pid>.json` every 50 jobs."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from celery import signals

from workers.app import create_app

# part -> (module, attribute): where save_session's plain functions look each one up
PARTS = {
    "parse payload": ("tasks.sessions", "parse_session"),
    "fill muscle groups": ("tasks.sessions", "fill_muscle_groups"),
    "export path": ("tasks.sessions", "export_path"),
    "take the locks, read the hash": ("storage.sessions.store", "SessionStore.holding"),
    "SQL rows": ("storage.sessions.store", "SessionStore._save_rows"),
    "JSON file": ("tasks.sessions", "write_export"),
    "free the locks, read the marks": ("storage.sessions.store", "SessionStore.holding"),
    "pending mark": ("storage.coordination", "Coordination.mark_pending"),
    "save_session body": ("tasks.sessions", "save_session"),
}
# context managers: the first label times entering, the second leaving
HELD = {"take the locks, read the hash": "free the locks, read the marks"}
FLUSH_EVERY = 50


class PhaseClock:
    """Totals of one pool process: label -> [calls, wall s, CPU s]."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.totals: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        self.started: tuple[float, float] | None = None
        self.finished_at: float | None = None
        self.jobs = 0

    def add(self, label: str, wall: float, cpu: float) -> None:
        entry = self.totals[label]
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu

    def timed(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - wall, time.process_time() - cpu)

        return run

    def timed_context(
        self, enter: str, leave: str, function: Callable[..., Any]
    ) -> Callable[..., Any]:
        clock = self

        @contextlib.contextmanager
        def run(*args: Any, **kwargs: Any) -> Iterator[Any]:
            manager = function(*args, **kwargs)
            wall, cpu = time.perf_counter(), time.process_time()
            value = manager.__enter__()
            clock.add(enter, time.perf_counter() - wall, time.process_time() - cpu)
            try:
                yield value
            except BaseException as error:
                if not manager.__exit__(type(error), error, error.__traceback__):
                    raise
            else:
                wall, cpu = time.perf_counter(), time.process_time()
                manager.__exit__(None, None, None)
                clock.add(leave, time.perf_counter() - wall, time.process_time() - cpu)

        return run

    def on_prerun(self, task: Any = None, **_: Any) -> None:
        now = time.perf_counter()
        if self.finished_at is not None and now - self.finished_at < 0.2:  # not a batch gap
            self.add(f"idle before {task.name}", now - self.finished_at, 0.0)
        self.started = (now, time.process_time())

    def on_postrun(self, task: Any = None, **_: Any) -> None:
        if self.started is None:
            return
        wall, cpu = self.started
        self.finished_at = time.perf_counter()
        self.add(f"task {task.name}", self.finished_at - wall, time.process_time() - cpu)
        self.jobs += 1
        if self.jobs % FLUSH_EVERY == 0:
            self.flush()

    def flush(self) -> None:
        path = self.folder / f"{os.getpid()}.json"
        path.write_text(json.dumps(dict(self.totals)))


def _install(clock: PhaseClock) -> None:
    leaving = set(HELD.values())
    for label, (module_name, attribute) in PARTS.items():
        if label in leaving:
            continue
        owner: Any = importlib.import_module(module_name)
        *parents, name = attribute.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        function = getattr(owner, name)
        if label in HELD:
            setattr(owner, name, clock.timed_context(label, HELD[label], function))
        else:
            setattr(owner, name, clock.timed(label, function))
    signals.task_prerun.connect(clock.on_prerun, weak=False)
    signals.task_postrun.connect(clock.on_postrun, weak=False)


def __getattr__(name: str) -> Any:
    if name == "app":
        _install(PhaseClock(Path(os.environ["BENCH_PHASES_DIR"])))
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
