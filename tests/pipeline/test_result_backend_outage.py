"""A result backend that goes away while a producer waits: UNAVAILABLE naming it, at once,
from the client and from `trainlog enqueue --wait`, with nothing printed behind it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.services import private_redis
from workers.cli import main
from workers.client import TrainlogClient

WAIT_AFTER_LOSING_REDIS = """
import os, signal, sys, time
from storage.errors import Unavailable
from storage.settings import Settings
from workers.client import TrainlogClient
url, home, server = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = TrainlogClient(Settings.for_home(home, broker_url=url))
result = client.send("ping")  # no worker: it stays queued
os.kill(server, signal.SIGKILL)
time.sleep(0.2)
try:
    client.wait(result, timeout=60)
except Unavailable as error:
    print(error.message)
"""


def test_client_wait_says_the_backend_is_unavailable(tmp_path: Path) -> None:
    """In a process of its own: Celery's cleanup of a pending result runs at exit, where it
    used to retry the lost backend for ~10 s and print a RuntimeError."""
    with private_redis() as server:
        assert server.process is not None
        url, pid = server.url, server.process.pid
        started = time.monotonic()
        waited = subprocess.run(
            [sys.executable, "-c", WAIT_AFTER_LOSING_REDIS, url, str(tmp_path), str(pid)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[2],
        )
    assert time.monotonic() - started < 8  # neither the 60 s timeout nor a retry at exit
    assert waited.returncode == 0, waited.stderr
    assert f"the result backend at {url} cannot be reached" in waited.stdout
    assert "Exception ignored" not in waited.stderr and "Retry limit" not in waited.stderr


def test_enqueue_wait_exits_1_naming_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_redis() as server:
        url = server.url
        monkeypatch.setenv("TRAINLOG_HOME", str(tmp_path))
        monkeypatch.setenv("TRAINLOG_BROKER_URL", url)
        send = TrainlogClient.send

        def send_then_lose_redis(self: TrainlogClient, job: str, *args: Any) -> Any:
            result = send(self, job, *args)
            server.kill()
            return result

        monkeypatch.setattr(TrainlogClient, "send", send_then_lose_redis)
        outcome = CliRunner().invoke(main, ["enqueue", "ping", "--wait", "--timeout", "60"])
    assert outcome.exit_code == 1, outcome.output
    assert "UNAVAILABLE" in outcome.output and "result backend" in outcome.output
    assert "no result within" not in outcome.output
