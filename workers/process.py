"""Start and stop a real Celery worker process with given settings (demo, tests, benches)."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from storage.errors import Unavailable
from storage.settings import Settings, settings_env
from workers.config import CONSUMED_QUEUES


class WorkerProcess:
    """`celery -A workers.app worker` in a child process, logging to a file."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int | None = None,  # None: the app's worker_concurrency (the settings')
        name: str = "trainlog",
        log_path: Path | None = None,
        extra_env: dict[str, str] | None = None,
        app_module: str = "workers.app",
        max_open_files: int | None = None,  # as a host's `ulimit -n` would cap it
    ) -> None:
        self.settings = settings
        self.log_path = log_path or settings.home / f"worker-{name}.log"
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app_module,
            "worker",
            "--loglevel",
            "INFO",
            "--queues",
            ",".join(CONSUMED_QUEUES),
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            *(["--concurrency", str(concurrency)] if concurrency else []),
        ]
        self.env = {**os.environ, **settings_env(settings), **(extra_env or {})}
        self.max_open_files = max_open_files
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=self._limit if self.max_open_files else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(
                    f"worker exited with {self.process.returncode}; see {self.log_path}",
                    path=str(self.log_path),
                )
            if b" ready." in self.log_path.read_bytes()[offset:]:
                return self
            time.sleep(0.1)
        self.kill()
        raise Unavailable(
            f"worker not ready within {timeout:g}s; see {self.log_path}", path=str(self.log_path)
        )

    def _limit(self) -> None:
        limit = int(self.max_open_files or 0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    def stop(self, timeout: float = 60) -> None:
        """Warm shutdown (SIGTERM): running tasks finish first."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole worker: the main process and its pool children."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
