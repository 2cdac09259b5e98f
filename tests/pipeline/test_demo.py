"""`trainlog demo`, the README's first command: a real worker on the embedded broker, a
month of data, metrics and a chart, with nothing configured but a home folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLOG_")}
    env["TRAINLOG_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "workers", "demo", "--months", "1", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["activities"] > 10 and summary["sessions"] > 2 and summary["weeks"] >= 4
    assert summary["ctl"] > 0 and summary["rollupAthletes"] >= 1
    chart = Path(summary["chart"])
    assert chart.is_file() and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exports = list(Path(summary["exportDir"]).glob("training_session_*.json"))
    assert len(exports) == summary["sessions"]
