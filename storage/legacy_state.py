"""Coordination state that earlier versions kept as files in the data folder, moved into SQL
once: pending recompute markers and the rollup watermark. Nothing pending is lost by an
upgrade, and a host never keeps a state the others cannot see."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date
from pathlib import Path

from storage.coordination import WATERMARK, Coordination, Since

log = logging.getLogger(__name__)
PENDING_FOLDER = ".pending-recompute"
WATERMARK_FILE = ".rollup-watermark.json"


def adopt_legacy_state(coordination: Coordination, data_dir: Path) -> None:
    """Merge the files into SQL, then remove them; a file that does not parse is left alone
    and named in the log."""
    folder = data_dir / PENDING_FOLDER
    if folder.is_dir():
        since: dict[str, Since] = {}
        for path in sorted(folder.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                since[str(data["athleteId"])] = (
                    date.fromisoformat(data["since"]) if data["since"] else None
                )
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("left %s alone: not a pending marker (%s)", path, error)
                return
        coordination.merge_pending(since)
        shutil.rmtree(folder, ignore_errors=True)
        if since:
            log.warning("moved %d pending recompute(s) from %s into SQL", len(since), folder)
    watermark = data_dir / WATERMARK_FILE
    if watermark.is_file():
        try:
            stamp = str(json.loads(watermark.read_text())["watermark"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("left %s alone: not a rollup watermark (%s)", watermark, error)
            return
        if coordination.read_mark(WATERMARK) is None:
            coordination.write_mark(WATERMARK, stamp)
        watermark.unlink(missing_ok=True)
