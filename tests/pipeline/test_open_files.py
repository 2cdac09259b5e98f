"""A recompute's open files do not grow with the span of an athlete's history: through a real
worker held to 256 open files, an athlete with an activity decades back (daily rows for 435
months, a file each) no longer fails every recompute it joins, nor the athletes batched with
it. (Under the common 1,024 limit, one activity dated 1900 did that: a file per month since.)"""

from __future__ import annotations

from pathlib import Path

from tests.factories import activity
from tests.pipeline.conftest import make_settings, storage_and_client, wait_for
from tests.services import redis_database
from workers.process import WorkerProcess


def test_an_athlete_with_decades_of_history_is_recomputed_under_a_file_limit(
    tmp_path: Path,
) -> None:
    with redis_database() as url:
        settings = make_settings(tmp_path / "home", url, recompute_delay=0)
        with storage_and_client(settings) as (stores, client):
            worker = WorkerProcess(settings, name="files", max_open_files=256).start()
            try:
                rows = [activity(1, athlete="old-timer", day="1990-01-01")]
                rows += [activity(2, athlete="old-timer", day="2026-03-01")]
                rows += [activity(n, athlete="recent", day="2026-03-02") for n in range(3)]
                client.run("ingest_activities", rows, timeout=60)
                client.run("nightly_rollup", timeout=240)

                def recomputed() -> set[str]:
                    daily = stores.repository("daily_metrics").read_frame()
                    return set(daily["athleteId"])

                assert wait_for(lambda: recomputed() == {"old-timer", "recent"}, seconds=60)
                months = stores.csv.parts(stores.repository("daily_metrics").table)
                assert len(months) > 256  # a month file each, every day since 1990 a row
                assert "Too many open files" not in worker.log_text()
            finally:
                worker.stop()
