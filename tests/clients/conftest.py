"""Clients nobody here wrote, and a real worker on Redis for them to talk to."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.conftest import Pipeline, make_settings, run_pipeline
from tests.services import in_ci, redis_database, require

HERE = Path(__file__).parent
NODE_PROJECT = HERE / "node"
FOREIGN_VENV = Path(
    os.environ.get("TRAINLOG_TEST_FOREIGN_VENV", Path.home() / ".cache/trainlog-tests/celery-only")
)
CELERY_ONLY = "celery[redis]>=5.5,<6"


@pytest.fixture(scope="package")
def redis_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One real worker on a Redis db of its own, shared by the package's tests."""
    home = tmp_path_factory.mktemp("foreign-clients")
    with redis_database() as url:
        yield from run_pipeline(make_settings(home, url))


@pytest.fixture(scope="session")
def node_producer() -> Path:
    """The celery-node project, installed from its lock file on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    require("Node.js and npm", bool(node and npm), "the celery-node client tests need them")
    if not (NODE_PROJECT / "node_modules" / "celery-node").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=NODE_PROJECT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        require("npm registry", installed.returncode == 0, installed.stderr[-500:])
    return NODE_PROJECT / "producer.js"


@pytest.fixture(scope="session")
def foreign_python() -> Path:
    """A Python with Celery and redis-py but not trainlog (made once, kept between runs)."""
    python = FOREIGN_VENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(FOREIGN_VENV)], capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", CELERY_ONLY],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if installed.returncode != 0:
            shutil.rmtree(FOREIGN_VENV, ignore_errors=True)
        require("PyPI", installed.returncode == 0, installed.stderr[-500:])
    isolated = subprocess.run(
        [str(python), "-c", "import storage"], capture_output=True, cwd="/", env=_bare_env()
    )
    assert isolated.returncode != 0, f"{python} can import trainlog's packages"
    return python


def _bare_env() -> dict[str, str]:
    """The environment without anything that would let a child find this project."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run_client(command: list[str], timeout: float = 90) -> dict[str, Any]:
    """Run one producer command from outside the repository; its one JSON line, parsed."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd="/", env=_bare_env()
    )
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


__all__ = ["in_ci", "run_client"]
