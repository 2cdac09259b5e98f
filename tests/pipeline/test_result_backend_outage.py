"""A result backend that goes away while a producer waits: UNAVAILABLE naming it, at once,
from the client and from `trainlog enqueue --wait`, with nothing printed behind it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.services import port_open, require
from workers.cli import main
from workers.client import TrainlogClient


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free port, so it can be killed mid-test."""
    binary = shutil.which("redis-server")
    require("redis-server", binary is not None, "no redis-server binary on PATH")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert time.monotonic() < deadline and server.poll() is None, "redis-server not up"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        server.kill()
        server.wait()


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
    with private_redis() as (url, server):
        started = time.monotonic()
        waited = subprocess.run(
            [sys.executable, "-c", WAIT_AFTER_LOSING_REDIS, url, str(tmp_path), str(server.pid)],
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
    with private_redis() as (url, server):
        monkeypatch.setenv("TRAINLOG_HOME", str(tmp_path))
        monkeypatch.setenv("TRAINLOG_BROKER_URL", url)
        send = TrainlogClient.send

        def send_then_lose_redis(self: TrainlogClient, job: str, *args: Any) -> Any:
            result = send(self, job, *args)
            server.kill()
            server.wait()
            return result

        monkeypatch.setattr(TrainlogClient, "send", send_then_lose_redis)
        outcome = CliRunner().invoke(main, ["enqueue", "ping", "--wait", "--timeout", "60"])
    assert outcome.exit_code == 1, outcome.output
    assert "UNAVAILABLE" in outcome.output and "result backend" in outcome.output
    assert "no result within" not in outcome.output
