"""The PMC chart: readable for a series of one or two days (a tick per day, a marker per
point), written atomically, and refused with a clear error where it cannot be written."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib import pyplot as plt

from storage.settings import Settings, settings_env
from storage.stores import Stores
from tasks.metrics import recompute
from tasks.rows import upsert_rows
from tests.factories import activity
from workers.cli import main
from workers.report import pmc_figure


def daily(days: int) -> pd.DataFrame:
    dates = pd.date_range("2026-03-01", periods=days, freq="D")
    return pd.DataFrame({"date": dates, "load": 50.0, "ctl": 1.0, "atl": 5.0, "tsb": range(days)})


@pytest.mark.parametrize("days", [1, 2, 10])
def test_a_short_series_has_a_tick_per_day_and_markers(days: int) -> None:
    figure = pmc_figure(daily(days), "a")
    figure.canvas.draw()
    load_axis, lines = figure.axes
    labels = [tick.get_text() for tick in load_axis.get_xticklabels() if tick.get_text()]
    assert labels and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", label) for label in labels)
    assert len(labels) <= days + 1
    assert all(line.get_marker() == "o" for line in lines.get_lines()[:3])
    plt.close(figure)


def test_a_long_series_has_no_markers() -> None:
    figure = pmc_figure(daily(120), "a")
    _, lines = figure.axes
    assert all(line.get_marker() in (None, "None", "") for line in lines.get_lines()[:3])
    plt.close(figure)


@pytest.fixture
def two_days(settings: Settings, stores: Stores) -> Settings:
    upsert_rows(
        stores, "activities", [activity(1, day="2026-03-01"), activity(2, day="2026-03-02")]
    )
    recompute.recompute_all(stores)
    return settings


def test_report_writes_the_chart_and_refuses_a_place_it_cannot_write(
    two_days: Settings, tmp_path: Path
) -> None:
    env = settings_env(two_days)
    chart = tmp_path / "charts" / "pmc.png"
    written = CliRunner().invoke(main, ["report", "athlete-1", "--out", str(chart)], env=env)
    assert written.exit_code == 0, written.output
    assert chart.read_bytes().startswith(b"\x89PNG") and "days: 2" in written.output
    for bad in ("/proc/r.png", "/etc/passwd/x.png"):
        refused = CliRunner().invoke(main, ["report", "athlete-1", "--out", bad], env=env)
        assert refused.exit_code == 1 and bad in refused.output, refused.output
        assert refused.exception is None or isinstance(refused.exception, SystemExit)
