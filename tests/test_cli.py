"""The command line: bad flags, arguments and env vars give one clear line and a non-zero
exit code, never a traceback; doctor reports the embedded default as healthy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from storage.coordination import FLUSH
from storage.settings import load_settings
from storage.stores import Stores
from tests.factories import session_payload
from workers.cli import main


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRAINLOG_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args))


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["enqueue", "frobnicate"], 2, "unknown job"),
        (["enqueue", "save_session", "@/no/such/file.json"], 2, "cannot read"),
        (["enqueue", "ping", "--kwargs", "[1]"], 2, "--kwargs"),
        (["enqueue", "save_session", "{bad json"], 2, "argument 1 is not valid JSON"),
        (["import-sessions", "/etc"], 1, "outside the import folder"),
        (["import-sessions", "../.."], 1, "outside the import folder"),
        (["report", "nobody"], 1, "no daily metrics"),
        (["export", "not-a-uuid"], 1, "is not a UUID"),
        (["migrate", "sideways"], 2, "No such command"),
        (["seeds", "explode"], 2, "Invalid value"),
        (["failures", "--limit", "0"], 2, "Invalid value"),
        (["demo", "--months", "999"], 2, "Invalid value"),
        (["enqueue", "save_session", "[" * 5000 + "]" * 5000], 2, "argument 1 is not valid"),
        (["enqueue", "save_session", "[" * 100 + "]" * 100], 2, "levels deep"),
        (["enqueue", "save_session", "@/bin/true"], 2, "is not UTF-8 text"),
        (["enqueue", "save_session", "@/dev/zero"], 2, "is a character device"),
        (["enqueue", "save_session", "@/etc"], 2, "is a folder"),
        (["report", "nobody", "--out", "chart.xyz"], 1, "must end in .png, .svg, .pdf"),
        (["report", "nobody", "--out", "/etc/passwd/x.png"], 1, "/etc/passwd is not a folder"),
        (["undeliverable", "sideways"], 2, "Invalid value"),
        (["enqueue", "ping", "--wait", "--timeout", "nan"], 2, "nan is not a number of seconds"),
        (["demo", "--chart", "chart.txt"], 1, "--chart chart.txt: a chart file must end in"),
    ],
)
def test_bad_arguments_are_clear(run, args: list[str], code: int, words: str) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("variable", "value", "command", "words"),
    [
        ("TRAINLOG_RESULT_BACKEND", "garbage://x", ["enqueue", "ping", "--wait"], "no result"),
        ("TRAINLOG_BROKER_URL", "nats://x:4222", ["enqueue", "ping"], "Celery has no broker"),
        ("TRAINLOG_DATA_DIR", "{file}", ["report", "athlete-1"], "is a file, not a folder"),
        ("TRAINLOG_EXPORT_DIR", "{file}", ["export"], "is a file, not a folder"),
        ("TRAINLOG_EXPORT_DIR", "{file}/below", ["export"], "is in the way"),
    ],
)
def test_bad_settings_are_clear(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
    command: list[str], words: str,
) -> None:  # fmt: skip
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(variable, value.replace("{file}", str(blocker)))
    result = run(*command)
    assert result.exit_code == 2, result.output
    assert f"error: CONFIGURATION: {variable}" in result.output and words in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("variable", "value", "exit_code", "words"),
    [
        ("TRAINLOG_BROKER_URL", "foo://x", 1, "FAIL broker     CONFIGURATION"),
        ("TRAINLOG_RESULT_BACKEND", "foo://x", 1, "Celery has no result backend 'foo'"),
        ("TRAINLOG_RESULT_BACKEND", "cache+memcached://127.0.0.1:1/", 2, "requires the"),
        ("TRAINLOG_BROKER_URL", "redis://:S3cr3t#x@127.0.0.1:1/0", 2, "percent-encoded"),
    ],
)
def test_doctor_reports_a_bad_setting_without_a_traceback(
    run, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, exit_code: int, words: str
) -> None:
    monkeypatch.setenv(variable, value)
    command = ["enqueue", "ping", "--wait"] if "memcached" in value else ["doctor"]
    result = run(*command)
    assert result.exit_code == exit_code, result.output
    assert words in result.output and "S3cr3t" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_home_that_is_not_utf8_text_is_a_setting_error(run, monkeypatch) -> None:
    monkeypatch.setenv("TRAINLOG_HOME", "/tmp/trainlog-home-\udcff")  # the byte 0xff
    result = run("doctor")
    assert result.exit_code == 2 and "TRAINLOG_HOME holds bytes that are not UTF-8" in result.output


def test_a_wait_that_times_out_names_the_job_and_its_state_and_exits_3(run) -> None:
    """No worker runs: the job stays queued (before, this read as an unreachable backend)."""
    result = run("enqueue", "ping", "--wait", "--timeout", "0.2")
    assert result.exit_code == 3, result.output
    assert "TIMEOUT: job " in result.output and "is not finished after 0.2 s" in result.output
    assert "(state PENDING)" in result.output and "UNAVAILABLE" not in result.output
    as_json = run("enqueue", "ping", "--wait", "--timeout", "0.2", "--json")
    error = json.loads(as_json.stdout)["error"]
    assert as_json.exit_code == 3 and error["code"] == "TIMEOUT" and error["key"]


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["enqueue", "frobnicate", "--json"], "VALIDATION", 2),
        (["report", "nobody", "--json"], "NOT_FOUND", 1),
        (["export", "not-a-uuid", "--json"], "VALIDATION", 1),
        (["failures", "--json"], None, 0),
    ],
)
def test_json_output_gives_errors_as_json(
    run, args: list[str], code: str | None, exit_code: int
) -> None:
    result = run(*args)
    assert result.exit_code == exit_code, result.output
    parsed = json.loads(result.stdout)
    if code is None:
        assert "error" not in parsed
    else:
        assert parsed["error"]["code"] == code and parsed["error"]["message"]


def test_a_bad_setting_with_json_is_a_json_error(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINLOG_LOCK_TIMEOUT", "nan")
    monkeypatch.setattr("sys.argv", ["trainlog", "failures", "--json"])
    result = run("failures", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "CONFIGURATION"


def test_undeliverable_lists_and_purges_set_aside_messages(run, tmp_path: Path) -> None:
    assert "no message set aside" in run("undeliverable").output
    rejected = tmp_path / "home" / "broker" / "rejected"
    rejected.mkdir(parents=True)
    record = {"reason": "its body is list [1]", "queue": "default", "setAsideAt": "now",
              "message": {"headers": {"task": "trainlog.ping", "id": "t-1"}}}  # fmt: skip
    (rejected / "1_x.default.msg").write_text(json.dumps(record))
    listed = run("undeliverable")
    assert listed.exit_code == 0 and "trainlog.ping" in listed.output and "[1]" in listed.output
    assert json.loads(run("undeliverable", "--json").output)[0]["reason"] == record["reason"]
    doctor = run("doctor")
    assert doctor.exit_code == 1 and "1 message(s) set aside" in doctor.output
    assert json.loads(run("undeliverable", "purge", "--json").output) == {"purged": 1}
    assert run("doctor").exit_code == 0


def test_enqueue_on_a_fresh_home_queues_the_job(run, tmp_path: Path) -> None:
    """Nothing configured, nothing created yet: the embedded broker's folders are made."""
    result = run("enqueue", "ping", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["job"] == "ping"
    queued = list((tmp_path / "home").rglob("*.msg"))
    assert len(queued) == 1 and json.loads(queued[0].read_text())["headers"]["task"] == (
        "trainlog.ping"
    )


def test_enqueue_to_an_unreachable_broker_says_so(run, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TRAINLOG_BROKER_URL", f"redis://user:hunter2@127.0.0.1:{port}/0")
    result = run("enqueue", "ping")
    assert result.exit_code == 1, result.output
    assert "UNAVAILABLE" in result.output and f"127.0.0.1:{port}" in result.output
    assert "hunter2" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_environment_names_the_variable(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINLOG_TIMEZONE", "Nowhere/Land")
    result = run("doctor")
    assert result.exit_code == 2 and "TRAINLOG_TIMEZONE" in result.output


def test_doctor_counts_jobs_taken_by_workers_on_redis(
    run, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that died holding jobs left them in `unacked`: 0 queued said nothing waits."""
    import redis

    monkeypatch.setenv("TRAINLOG_BROKER_URL", redis_url)
    client = redis.Redis.from_url(redis_url)
    client.hset("unacked", mapping={"tag-1": "[]", "tag-2": "[]"})
    client.close()
    doctor = json.loads(run("doctor", "--json").output)
    assert "0 queued, 2 taken by workers and not finished" in doctor["broker"]["detail"]


def test_doctor_json_on_embedded_default(run) -> None:
    result = run("doctor", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"broker", "undeliverable", "database", "folders"}
    assert all(check["ok"] for check in report.values())


def test_doctor_counts_what_it_can_and_invents_no_count(tmp_path: Path) -> None:
    """The embedded broker's queue is counted; a broker trainlog cannot count (AMQP) is not
    reported as '-1 queued'."""
    from storage.settings import Settings
    from workers.client import TrainlogClient
    from workers.queues import queue_depth

    embedded = Settings.for_home(tmp_path / "home")
    client = TrainlogClient(embedded)
    try:
        client.send("ping")
    finally:
        client.close()
    assert queue_depth(embedded) == 1
    assert queue_depth(embedded.with_(broker_url="amqp://guest@127.0.0.1:5672//")) is None


def test_failures_and_migrate_current_as_json(run) -> None:
    assert json.loads(run("failures", "--json").output) == []
    current = json.loads(run("migrate", "upgrade", "--json").output)
    assert current["sql"]["to"] and current["csv"] == {}
    state = json.loads(run("migrate", "current", "--json").output)
    assert state["current"] == state["heads"]


def test_import_sessions_exits_1_when_a_file_is_refused(run, tmp_path: Path) -> None:
    folder = tmp_path / "home" / "imports" / "batch"
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text("{")
    result = run("import-sessions", "batch", "--json")
    assert result.exit_code == 1
    assert "broken.json" in result.output and "not valid JSON" in result.output


def test_import_sessions_leaves_the_athlete_pending_when_no_broker_takes_the_recompute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "home" / "imports" / "batch"
    folder.mkdir(parents=True)
    payload = session_payload(5)
    document = {**payload, "dataModelVersion": 1, "dataModelType": "training_session_log"}
    (folder / "s.json").write_text(json.dumps(document))
    broker = f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"
    monkeypatch.setenv("TRAINLOG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINLOG_BROKER_URL", broker)
    done = subprocess.run(
        [sys.executable, "-m", "workers", "import-sessions", "batch", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr  # the sessions are stored; their recompute waits
    summary = json.loads(done.stdout)
    assert summary["imported"] == 1 and summary["recomputeQueued"] is False
    assert "could not be queued" in done.stderr and "hunter2" not in done.stdout + done.stderr
    stores = Stores(load_settings())
    coordination = stores.coordination
    assert coordination.pending_athletes() == {payload["userId"]: date(2026, 3, 5)}
    # no flush is marked as scheduled, so the next change a worker handles schedules one
    assert coordination.read_mark(FLUSH) is None
    stores.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "args, code",
    [
        (["enqueue", "ping"], 2),
        (["doctor"], 1),
        (["demo", "--months", "1"], 2),
        (["worker"], 2),
        (["beat"], 2),
        (["flower"], 2),
    ],
)
def test_a_broker_folder_that_cannot_be_made_is_named(
    tmp_path: Path, args: list[str], code: int
) -> None:
    """In a subprocess: `worker`, `beat` and `flower` become Celery once the check passes."""
    home = tmp_path / "home"
    (home / "broker").mkdir(parents=True)
    (home / "broker" / "queue").write_text("a file where the queue folder goes")
    environment = {**os.environ, "TRAINLOG_HOME": str(home), "TRAINLOG_FLOWER_PASSWORD": "pw"}
    environment.pop("TRAINLOG_BROKER_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "workers", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert done.returncode == code, done.stdout + done.stderr
    assert f"{home / 'broker' / 'queue'}: File exists" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
