"""Every documented way to start Flower against this app requires credentials: started as
`celery -A workers.app flower`, it refuses to start without them, and with them its pages,
datatable and API all answer 401 to a stranger. /metrics and /healthcheck stay open (Flower's
design: keep the port off public networks)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.services import port_open


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status(port: int, path: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.parametrize(
    "command",
    [["-m", "celery", "-A", "workers.app", "flower"], ["-m", "workers", "flower"]],
    ids=["celery -A workers.app flower", "trainlog flower"],
)
def test_flower_without_credentials_refuses_to_start(tmp_path: Path, command: list[str]) -> None:
    env = {**os.environ, "TRAINLOG_HOME": str(tmp_path)}
    env.pop("TRAINLOG_FLOWER_PASSWORD", None)
    env.pop("FLOWER_BASIC_AUTH", None)
    done = subprocess.run(
        [sys.executable, *command, f"--port={free_port()}"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "TRAINLOG_FLOWER_PASSWORD" in done.stderr


def test_flower_started_by_celery_asks_a_stranger_for_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TRAINLOG_HOME": str(tmp_path), "TRAINLOG_FLOWER_PASSWORD": "s3cret"}
    flower = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers.app", "flower", f"--port={port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)
        for path in ("/", "/tasks", "/tasks/datatable", "/api/workers", "/api/tasks"):
            assert status(port, path) == 401, path
        assert status(port, "/", auth=("admin", "s3cret")) == 200
        assert status(port, "/", auth=("admin", "wrong")) == 401
        assert status(port, "/healthcheck") == 200  # open by Flower's design
    finally:
        os.killpg(flower.pid, 9)
        flower.wait()
