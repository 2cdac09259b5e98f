"""Processes writing at once (CSV, SQLite, PostgreSQL): nothing lost, versions honoured."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from tests.storage import workers_proc
from tests.storage.repos import SHARED_BACKENDS, backend_location, open_repository

PROCESSES = 4


def run_processes(target, args_list: list[tuple]) -> None:
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=target, args=args) for args in args_list]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=240)
        assert child.exitcode == 0, f"writer exited with {child.exitcode}"


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
def test_concurrent_distinct_upserts_lose_nothing(backend: str, tmp_path: Path) -> None:
    with backend_location(backend, tmp_path) as location:
        open_repository(backend, location, "goals").shutdown()  # create the schema once
        run_processes(
            workers_proc.upsert_distinct,
            [(backend, location, worker, 300) for worker in range(PROCESSES)],
        )
        repo = open_repository(backend, location, "goals")
        rows = list(repo.iterate(page_size=5000))
        repo.shutdown()
    assert len(rows) == PROCESSES * 300
    assert len({row["goalId"] for row in rows}) == PROCESSES * 300


@pytest.mark.parametrize("backend", SHARED_BACKENDS)
def test_concurrent_optimistic_increments_count_exactly(backend: str, tmp_path: Path) -> None:
    with backend_location(backend, tmp_path) as location:
        repo = open_repository(backend, location, "goals")
        repo.add({"goalId": "counter", "athleteId": "a", "title": "c", "targetValue": 0})
        run_processes(
            workers_proc.increment_counter, [(backend, location, 100) for _ in range(PROCESSES)]
        )
        row = repo.get("counter")
        repo.shutdown()
    assert row is not None
    assert row["targetValue"] == PROCESSES * 100
    assert row["version"] == PROCESSES * 100 + 1
