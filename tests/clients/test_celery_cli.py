"""Celery's own command line against a running trainlog worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from celery.utils.collections import AttributeDict
from celery.worker.control import Panel

from storage.settings import Settings, settings_env
from tests.pipeline.conftest import Pipeline
from workers.app import create_app
from workers.remote_control import obeyed_handlers

JOBS_DOC = Path(__file__).parents[2] / "docs" / "jobs.md"


def documented_jobs() -> set[str]:
    """The task names in docs/jobs.md's table of public jobs."""
    return set(re.findall(r"^\| `(trainlog\.\w+)` \|", JOBS_DOC.read_text(), re.MULTILINE))


def celery(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(pipeline.settings)}
    command = [sys.executable, "-m", "celery", "-A", "workers.app", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_inspect_registered_lists_every_public_job(redis_pipeline: Pipeline) -> None:
    public = documented_jobs()
    assert len(public) >= 12
    done = celery(redis_pipeline, "inspect", "registered", "--timeout", "10")
    assert done.returncode == 0, done.stderr
    registered = set(re.findall(r"\* (trainlog\.\w+)", done.stdout))
    assert public <= registered, f"not registered: {sorted(public - registered)}"


def test_celery_call_runs_a_job_by_name(redis_pipeline: Pipeline) -> None:
    done = celery(redis_pipeline, "call", "trainlog.ping", "--queue", "default")
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.strip()
    assert redis_pipeline.client.celery.AsyncResult(task_id).get(timeout=60) is not None


def test_remote_commands_that_would_stop_or_change_a_worker_are_refused(
    redis_pipeline: Pipeline,
) -> None:
    """Any broker client can broadcast them: the worker answers with an error and goes on."""
    for command in (["shutdown"], ["cancel_consumer", "default"]):  # Celery's own CLI
        done = celery(redis_pipeline, "control", *command, "--timeout", "3")
        assert "do not take the remote command" in done.stdout + done.stderr, command
    control = redis_pipeline.client.celery.control
    for name, arguments in (
        ("pool_restart", {}),
        ("time_limit", {"task_name": "trainlog.ping", "soft": 1e5, "hard": 1e5}),
        ("rate_limit", {"task_name": "trainlog.ping", "rate_limit": "1/h"}),
        ("revoke", {"task_id": "no-such-job", "terminate": True}),
    ):
        replies = control.broadcast(name, arguments, reply=True, limit=1, timeout=10)
        assert replies and "error" in next(iter(replies[0].values())), (name, replies)
    process = redis_pipeline.worker.process
    assert process is not None and process.poll() is None
    assert redis_pipeline.client.run("ping", timeout=30)["pong"] is True
    done = celery(redis_pipeline, "inspect", "stats", "--timeout", "10")
    assert done.returncode == 0 and "pool" in done.stdout, done.stderr


def test_the_conf_a_worker_reports_shows_no_password_in_a_url_query(tmp_path: Path) -> None:
    """`celery inspect conf` (and Flower's config tab) from any broker client: Celery hides a
    URL's user:password, not its `?password=`."""
    settings = Settings.for_home(
        tmp_path, result_backend="db+postgresql://u@db/results?password=S3CRET&sslmode=require"
    )
    app = create_app(settings)
    kinds = {name: meta.type for name, meta in Panel.meta.items()}
    conf = obeyed_handlers(Panel.data, kinds)["conf"]
    reply = conf(AttributeDict(app=app, hostname="h"))
    assert "S3CRET" not in json.dumps(reply, default=str)
    assert reply["result_backend"].endswith("?password=***&sslmode=require")
