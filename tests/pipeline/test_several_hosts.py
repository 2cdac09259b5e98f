"""Two worker hosts that share only Redis and PostgreSQL (every table in SQL) and one export
folder: what one host marks, the other's job finds; the JSON files are written once; a host
with an export folder of its own does not start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from storage.errors import Unavailable
from storage.settings import Settings
from storage.stores import Stores
from tests.factories import activity, session_payload
from tests.pipeline.conftest import make_settings, wait_for
from tests.services import postgres_database, redis_database
from workers.client import TrainlogClient
from workers.process import WorkerProcess

TIMEOUT = 60


@dataclass
class Hosts:
    a: Settings
    b: Settings
    stores: Stores
    client: TrainlogClient


def host_settings(root: Path, name: str, broker: str, database: str, exports: Path) -> Settings:
    return make_settings(
        root / name,
        broker,
        database_url=database,
        export_dir=exports,
        table_backends={"*": "sql"},
        recompute_delay=1,
    )


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("hosts")
    with redis_database() as broker, postgres_database() as database:
        shared = root / "shared-mount" / "exports"
        a, b = (host_settings(root, n, broker, database, shared) for n in ("a", "b"))
        stores = Stores(a)
        stores.initialize()  # the deploy's migrate step
        client = TrainlogClient(a)
        workers = [WorkerProcess(s, name=n, concurrency=1) for s, n in ((a, "a"), (b, "b"))]
        try:
            for worker in workers:
                worker.start()
            yield Hosts(a, b, stores, client)
        finally:
            for worker in workers:
                worker.stop()
            client.close()
            stores.close()


def test_changes_on_either_host_are_recomputed_and_nothing_stays_pending(hosts: Hosts) -> None:
    athletes = [f"ath-hosts-{n}" for n in range(6)]
    sent = [
        hosts.client.send("ingest_activities", [activity(n, athlete=a, day=f"2026-07-0{n + 1}")])
        for n, a in enumerate(athletes)
    ]
    for result in sent:
        result.get(timeout=TIMEOUT)
    daily = hosts.stores.repository("daily_metrics")
    assert wait_for(lambda: all(daily.read_frame({"athleteId": a}).shape[0] for a in athletes), 60)
    shared = hosts.stores.coordination
    assert wait_for(
        lambda: not shared.pending_athletes() and shared.read_mark("flush-scheduled") is None
    )
    for settings in (hosts.a, hosts.b):  # nothing coordinates through a host's own folder
        left = sorted(p.name for p in settings.data_dir.rglob("*") if p.is_file())
        assert left == [], left


def test_sessions_are_written_once_to_the_shared_folder(hosts: Hosts) -> None:
    payloads = [session_payload(60 + n) for n in range(4)]
    results = [hosts.client.run("save_session", p, timeout=TIMEOUT) for p in payloads]
    assert {Path(r["jsonPath"]).parent for r in results} == {hosts.a.export_dir}
    for _ in range(2):  # whichever host takes it, there is nothing to repair
        assert hosts.client.run("reconcile_exports", timeout=TIMEOUT)["repaired"] == []
    files = sorted(hosts.a.export_dir.glob("training_session_*.json"))
    assert len(files) == len(payloads)


def test_a_host_with_an_export_folder_of_its_own_does_not_start(hosts: Hosts) -> None:
    own = hosts.a.export_dir.parents[1] / "c" / "exports"
    c = hosts.b.with_(home=own.parent, data_dir=own.parent / "data", export_dir=own)
    worker = WorkerProcess(c, name="c", concurrency=1)
    with pytest.raises(Unavailable, match="exited with 3"):
        worker.start(timeout=60)
    log = worker.log_path.read_text()
    assert "CONFIGURATION" in log and str(own) in log and str(hosts.a.export_dir) in log


def test_a_host_that_places_tables_otherwise_does_not_start(hosts: Hosts) -> None:
    """Started without the fleet's TRAINLOG_TABLE_BACKENDS, it kept its activities in a
    CSV folder of its own, and every job reported success."""
    home = hosts.a.export_dir.parents[1] / "d"
    d = hosts.b.with_(home=home, data_dir=home / "data", table_backends={})
    worker = WorkerProcess(d, name="d", concurrency=1)
    with pytest.raises(Unavailable, match="exited with 3"):
        worker.start(timeout=60)
    log = worker.log_path.read_text()
    assert "CONFIGURATION" in log and "activities (csv here, sql there)" in log


def metrics_rows(stores: Stores, athletes: list[str]) -> dict[str, pd.DataFrame]:
    """The metrics tables of these athletes, without bookkeeping, sorted."""
    out: dict[str, pd.DataFrame] = {}
    for table, keys in (
        ("daily_metrics", ["athleteId", "date"]),
        ("weekly_metrics", ["athleteId", "weekStartDate"]),
    ):
        frame = stores.repository(table).read_frame({"athleteId": athletes})
        out[table] = (
            frame.drop(columns=["createdAt", "updatedAt", "version"])
            .sort_values(keys)
            .reset_index(drop=True)
        )
    return out


def test_a_recompute_waits_for_the_one_holding_the_lock_and_loses_nothing(hosts: Hosts) -> None:
    """The lost update made deterministic: a slow recompute holds the metrics lock (here, the
    test); a change and its on-demand recompute arrive meanwhile on either host; the recompute
    waits, then reads the new row. Once idle, the rows equal a single-process full recompute."""
    from storage.coordination import METRICS_LOCK
    from storage.sql.named_locks import holding
    from tasks.metrics import recompute

    athletes = ["ath-lock-a", "ath-lock-b"]
    first = [activity(n, athlete=a, day="2026-08-03") for n, a in enumerate(athletes)]
    for result in [hosts.client.send("ingest_activities", [row]) for row in first]:
        result.get(timeout=TIMEOUT)
    daily = hosts.stores.repository("daily_metrics")
    assert wait_for(lambda: all(daily.read_frame({"athleteId": a}).shape[0] for a in athletes), 60)
    with holding(hosts.stores.database, [METRICS_LOCK], timeout=10):
        later = activity(9, athlete=athletes[0], day="2026-08-05")
        hosts.client.run("ingest_activities", [later], timeout=TIMEOUT)
        pending = hosts.client.send("recompute_daily_metrics", athletes[0], "2026-08-01")
        time.sleep(3)
        assert pending.state == "PENDING"  # waiting for the lock, on whichever host took it
        assert daily.read_frame({"athleteId": athletes[0]}).shape[0] == 1
    assert pending.get(timeout=TIMEOUT)["days"] == 3  # 08-03 .. 08-05, the new day included
    shared = hosts.stores.coordination
    assert wait_for(
        lambda: not shared.pending_athletes() and shared.read_mark("flush-scheduled") is None
    )
    time.sleep(2)  # the weekly follow-up
    settled = metrics_rows(hosts.stores, athletes)
    recompute.recompute_many(hosts.stores, dict.fromkeys(athletes))  # one process, in full
    for table, frame in metrics_rows(hosts.stores, athletes).items():
        pd.testing.assert_frame_equal(frame, settled[table], check_dtype=False)


def test_a_host_killed_mid_recompute_leaves_its_athletes_to_the_next(tmp_path: Path) -> None:
    """A flush took an athlete's mark and waits for the metrics lock (held here) when its
    host is SIGKILLed. The mark stays in SQL, taken: the other host's flushes leave it while
    its taker might still run, and once the hard time limit has passed (Redis hands the
    killed job out again after the visibility timeout) it is taken and recomputed."""
    from storage.coordination import FLUSH, METRICS_LOCK
    from storage.sql.named_locks import holding

    with redis_database() as broker, postgres_database() as database:
        shared = tmp_path / "shared-mount" / "exports"
        doomed, rescuer = (
            host_settings(tmp_path, n, broker, database, shared).with_(
                task_soft_time_limit=10, task_time_limit=15, visibility_timeout=20
            )
            for n in "ab"
        )
        stores = Stores(doomed)
        stores.initialize()
        client = TrainlogClient(doomed)
        daily = stores.repository("daily_metrics")
        coordination = stores.coordination
        try:
            with WorkerProcess(doomed, name="doomed", concurrency=1) as worker:
                client.run("ingest_activities", [activity(1, athlete="k", day="2026-11-02")])
                assert wait_for(lambda: daily.read_frame({"athleteId": "k"}).shape[0] == 1, 60)
                with holding(stores.database, [METRICS_LOCK], timeout=10):
                    new_day = activity(2, athlete="k", day="2026-11-04")
                    client.run("ingest_activities", [new_day], timeout=TIMEOUT)
                    # the flush has taken the marks (and the flush mark) and waits for the lock
                    assert wait_for(lambda: coordination.read_mark(FLUSH) is None, 30)
                    assert "k" in coordination.pending_athletes()
                    worker.kill()
            with WorkerProcess(rescuer, name="rescuer", concurrency=1):
                other = activity(3, athlete="other", day="2026-11-05")
                client.run("ingest_activities", [other], timeout=TIMEOUT)
                assert wait_for(lambda: daily.read_frame({"athleteId": "other"}).shape[0], 30)
                assert wait_for(lambda: daily.read_frame({"athleteId": "k"}).shape[0] == 3, 90)
                assert wait_for(lambda: not coordination.pending_athletes(), 30)
        finally:
            client.close()
            stores.close()
