"""What a job sees of the worker that runs it: its storage and settings, its own id, and a
way to queue a follow-up job. Celery's task implements it (workers/task.py); a test can pass
any object that does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from storage.settings import Settings
from storage.stores import Stores


class JobContext(Protocol):
    @property
    def stores(self) -> Stores: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def task_id(self) -> str | None: ...

    @property
    def worker(self) -> str | None: ...

    def enqueue(self, job: Callable[..., Any], *args: Any, countdown: float = 0) -> None:
        """Queue the job whose plain function is `job`, no sooner than `countdown` s."""
