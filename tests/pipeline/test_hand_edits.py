"""A CSV file edited by hand, as a coach might, through a real worker: a value no write would
store stops the recompute with CORRUPT naming the file, column and row (before, an avgHr of
999 or a durationSec of inf flowed into the metrics)."""

from __future__ import annotations

from storage.tables import get_table
from tests.factories import activity
from tests.pipeline.conftest import Pipeline


def test_a_recompute_over_a_hand_edited_value_fails_naming_it(pipeline: Pipeline) -> None:
    rows = [activity(n, athlete="hand-edit", day="2025-07-14") for n in range(3)]
    pipeline.client.run("ingest_activities", rows, timeout=60)
    month = pipeline.stores.csv.path(get_table("activities")) / "2025-07.csv"
    text = month.read_text()
    assert ",150.0," in text
    month.write_text(text.replace(",150.0,", ",999.0,", 1))
    failed = pipeline.client.send("recompute_daily_metrics", "hand-edit")
    outcome = pipeline.client.wait(failed, 60, propagate=False)
    assert failed.state == "FAILURE"
    assert str(outcome).startswith("CORRUPT:") and "2025-07.csv" in str(outcome)
    assert "activities.avgHr of data row" in str(outcome) and "must be at most 260" in str(outcome)
    month.write_text(text)  # mended: the next recompute runs
    assert pipeline.client.run("recompute_daily_metrics", "hand-edit", timeout=60)["days"] == 1
