"""A disk that fills during save_session (a file size limit, which fails the same way): the
save is refused as a transient error, nothing of it is half written, and once there is room
again the retried save lands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage.sessions.exports import read_export
from storage.settings import Settings
from storage.stores import Stores
from tasks import sessions
from tests.factories import session_payload

SAVE_UNTIL_FULL = """
import resource, signal, sys
from pathlib import Path
from storage.errors import PersistenceError
from storage.settings import Settings
from storage.stores import Stores
from tasks import sessions
from tests.factories import session_payload

home = Path(sys.argv[1])
stores = Stores(Settings.for_home(home))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
largest = max(p.stat().st_size for p in home.rglob("*") if p.is_file())
resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 20_000, resource.RLIM_INFINITY))
for n in range(1, 400):
    try:
        sessions.save_session(stores, session_payload(n))
    except PersistenceError as error:
        print(f"refused {n} {error.code} transient={error.transient}: {error}")
        break
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
sessions.save_session(stores, session_payload(n))  # the retry, with room again
print(f"retried {n}")
"""


def test_a_save_that_fills_the_disk_is_refused_whole_and_its_retry_lands(tmp_path: Path) -> None:
    settings = Settings.for_home(tmp_path / "home")
    stores = Stores(settings)
    stores.initialize()
    sessions.save_session(stores, session_payload(0))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SAVE_UNTIL_FULL, str(settings.home)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    refused = next(line for line in done.stdout.splitlines() if line.startswith("refused"))
    assert "UNAVAILABLE transient=True" in refused, done.stdout
    last = int(refused.split()[1])
    assert f"retried {last}" in done.stdout
    saved = {s.session_id for s in stores.sessions.iterate()}
    expected = {session_payload(n)["_id"] for n in range(last + 1)}
    assert saved == expected  # every save before the full disk, and the retried one
    files = sorted(settings.export_dir.glob("*.json"))
    assert {read_export(path).session_id for path in files} == expected
    assert not list(settings.export_dir.glob(".*.tmp"))  # no temp file left behind
    assert sessions.sync_session_activities(stores) == len(expected)  # as a recompute does
    activities = stores.repository("activities").read_frame()
    assert sorted(activities["sessionId"]) == sorted(expected)
