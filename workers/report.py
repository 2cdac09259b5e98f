"""The Performance Management Chart: CTL, ATL and TSB lines over daily load bars (PNG, SVG or
PDF). A short series (a month or less) gets a tick per day and a marker per point, so one or
two days read as days, not as hour ticks and lines with nothing on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from storage.atomic import replace_with
from storage.errors import NotFound, ValidationError
from storage.stores import Stores

CHART_FORMATS = (".png", ".svg", ".pdf")
SHORT_SERIES_DAYS = 31


def check_chart_path(out: Path, option: str = "--out") -> None:
    """VALIDATION before any work when the chart could not be written there; `option` is the
    command line's name for the path."""
    if out.suffix.lower() not in CHART_FORMATS:
        raise ValidationError(
            f"{option} {out}: a chart file must end in {', '.join(CHART_FORMATS)}", field=option
        )
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValidationError(f"{option} {out}: {existing} is not a folder", field=option)
    if out.is_dir():
        raise ValidationError(f"{option} {out} is a folder", field=option)


def draw_pmc(stores: Stores, athlete_id: str, out: Path) -> dict[str, object]:
    """Write the athlete's chart to `out`; a summary of its last day is returned."""
    check_chart_path(out)
    import matplotlib.pyplot as plt

    daily = stores.repository("daily_metrics").read_frame({"athleteId": athlete_id})
    if daily.empty:
        raise NotFound(
            f"no daily metrics for athlete {athlete_id!r}; ingest activities and recompute first",
            table="daily_metrics",
            key=athlete_id,
        )
    daily = daily.assign(date=pd.to_datetime(daily["date"])).sort_values("date")
    figure = pmc_figure(daily, athlete_id)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        replace_with(out, lambda handle: figure.savefig(handle, format=out.suffix[1:]), mode=0o644)
    except OSError as error:
        raise ValidationError(
            f"--out {out}: cannot create {out.parent} ({error.strerror})", field="--out"
        ) from None
    finally:
        plt.close(figure)
    last = daily.iloc[-1]
    return {
        "athleteId": athlete_id,
        "path": str(out),
        "days": len(daily),
        "lastDate": str(last["date"].date()),
        "ctl": round(float(last["ctl"]), 1),
        "atl": round(float(last["atl"]), 1),
        "tsb": round(float(last["tsb"]), 1),
    }


def pmc_figure(daily: pd.DataFrame, athlete_id: str) -> Any:
    """The chart of daily rows (date as Timestamps, in order): a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    short = len(daily) <= SHORT_SERIES_DAYS
    figure, load_axis = plt.subplots(figsize=(11, 5.5), dpi=110)
    load_axis.bar(
        daily["date"], daily["load"], width=0.8 if short else 1.0, color="#c9d6e3",
        label="daily load",
    )  # fmt: skip
    load_axis.set_ylabel("daily load")
    lines = load_axis.twinx()
    for column, color, width, label in (
        ("ctl", "#1f77b4", 2.0, "CTL (fitness)"),
        ("atl", "#d62728", 1.4, "ATL (fatigue)"),
        ("tsb", "#2ca02c", 1.4, "TSB (form)"),
    ):
        lines.plot(
            daily["date"], daily[column], color=color, linewidth=width, label=label,
            marker="o" if short else None,
        )  # fmt: skip
    if short:
        first, last_day = daily["date"].min(), daily["date"].max()
        load_axis.set_xlim(first - pd.Timedelta(hours=18), last_day + pd.Timedelta(hours=18))
        load_axis.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(daily) // 10)))
        load_axis.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    lines.axhline(0, color="#888888", linewidth=0.6)
    lines.set_ylabel("CTL / ATL / TSB")
    handles = load_axis.get_legend_handles_labels()[0] + lines.get_legend_handles_labels()[0]
    labels = load_axis.get_legend_handles_labels()[1] + lines.get_legend_handles_labels()[1]
    lines.legend(handles, labels, loc="upper left", fontsize=8)
    load_axis.set_title(f"Performance Management Chart - {athlete_id}")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure
