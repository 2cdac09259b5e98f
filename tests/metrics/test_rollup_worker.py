"""nightly_rollup through a real worker: after one new day, only the changed athletes move."""

from __future__ import annotations

from pathlib import Path

from storage.stores import Stores
from tests.factories import activity
from tests.pipeline.conftest import make_settings
from workers.client import TrainlogClient
from workers.process import WorkerProcess


def test_rollup_after_one_new_day_touches_only_changed_athletes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", None)
    stores = Stores(settings)
    stores.initialize()
    client = TrainlogClient(settings)
    athletes = ["ath-a", "ath-b", "ath-c"]
    with WorkerProcess(settings, name="rollup"):
        client.run(
            "ingest_activities",
            [
                activity(n, athlete=a, day=f"2026-05-{1 + n:02d}")
                for a in athletes
                for n in range(10)
            ],
            timeout=120,
        )
        first = client.run("nightly_rollup", timeout=120)
        assert sorted(first["from"]) == athletes
        before = {
            a: stores.repository("daily_metrics").read_frame({"athleteId": a}) for a in athletes
        }
        client.run(
            "ingest_activities", [activity(99, athlete="ath-b", day="2026-05-11")], timeout=120
        )
        second = client.run("nightly_rollup", timeout=120)
        assert second == {"athletes": 1, "from": {"ath-b": "2026-05-10"}}
    after = {a: stores.repository("daily_metrics").read_frame({"athleteId": a}) for a in athletes}
    for untouched in ("ath-a", "ath-c"):
        same = (
            after[untouched].reset_index(drop=True).equals(before[untouched].reset_index(drop=True))
        )
        assert same  # the same rows with the same stamps: not rewritten
    assert len(after["ath-b"]) == len(before["ath-b"]) + 1
    assert after["ath-b"]["date"].max() == "2026-05-11"
    client.close()
    stores.close()
