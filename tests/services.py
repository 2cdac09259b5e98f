"""Real services for tests: skipped on a laptop without them, a failure under CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_HOST = os.environ.get("TRAINLOG_TEST_REDIS_HOST", "127.0.0.1")
PG_ADMIN_URL = os.environ.get(
    "TRAINLOG_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(service: str, reachable: bool, why: str = "") -> None:
    if reachable:
        return
    message = f"{service} is not reachable{': ' + why if why else ''}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: service tests must run, not skip)")
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis db number of our own (1..15, claimed with a key), flushed before and after."""
    require("Redis", port_open(REDIS_HOST, 6379))
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=6379, db=number)
        if client.set("trainlog:test-claim", str(os.getpid()), nx=True, ex=3600):
            client.flushdb()
            client.set("trainlog:test-claim", str(os.getpid()), ex=3600)
            try:
                yield f"redis://{REDIS_HOST}:6379/{number}"
            finally:
                client.flushdb()
                client.close()
            return
    pytest.fail("no free Redis database number (1..15) for this test")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    require("PostgreSQL", port_open("127.0.0.1", 5432))
    import sqlalchemy as sa

    name = f"trainlog_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        require("PostgreSQL", False, str(error).splitlines()[0])
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class PrivateRedis:
    """A redis-server of a test's own on a free port, so the test can kill it. With a
    `folder` it keeps its data there (append-only file, fsync'd at every write), so a server
    started again after a kill has every message that was queued."""

    def __init__(self, folder: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        require("redis-server", binary is not None, "no redis-server binary on PATH")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        persistence = ["--appendonly", "no"]
        if folder is not None:
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)]
        self.command = [str(binary), "--port", str(self.port), "--bind", "127.0.0.1"]
        self.command += ["--save", "", *persistence]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline and self.process.poll() is None, "no redis-server"
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@contextmanager
def private_redis(folder: Path | None = None) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder).start()
    try:
        yield server
    finally:
        server.kill()
