"""The Performance Management Chart: CTL, ATL and TSB lines over daily load bars (PNG)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storage.errors import NotFound
from storage.stores import Stores


def draw_pmc(stores: Stores, athlete_id: str, out: Path) -> dict[str, object]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    daily = stores.repository("daily_metrics").read_frame({"athleteId": athlete_id})
    if daily.empty:
        raise NotFound(
            f"no daily metrics for athlete {athlete_id!r}; ingest activities and recompute first",
            table="daily_metrics",
            key=athlete_id,
        )
    daily = daily.assign(date=pd.to_datetime(daily["date"])).sort_values("date")
    figure, load_axis = plt.subplots(figsize=(11, 5.5), dpi=110)
    load_axis.bar(daily["date"], daily["load"], width=1.0, color="#c9d6e3", label="daily load")
    load_axis.set_ylabel("daily load")
    lines = load_axis.twinx()
    lines.plot(daily["date"], daily["ctl"], color="#1f77b4", linewidth=2, label="CTL (fitness)")
    lines.plot(daily["date"], daily["atl"], color="#d62728", linewidth=1.4, label="ATL (fatigue)")
    lines.plot(daily["date"], daily["tsb"], color="#2ca02c", linewidth=1.4, label="TSB (form)")
    lines.axhline(0, color="#888888", linewidth=0.6)
    lines.set_ylabel("CTL / ATL / TSB")
    handles = load_axis.get_legend_handles_labels()[0] + lines.get_legend_handles_labels()[0]
    labels = load_axis.get_legend_handles_labels()[1] + lines.get_legend_handles_labels()[1]
    lines.legend(handles, labels, loc="upper left", fontsize=8)
    load_axis.set_title(f"Performance Management Chart - {athlete_id}")
    figure.autofmt_xdate()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
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
