"""A burst of changes for one athlete queues one recompute, from the earliest date."""

from __future__ import annotations

import json
import time
from datetime import date

from storage.stores import Stores
from tasks.metrics.pending import mark_pending, take_pending


def test_burst_coalesces_to_one_job_from_the_earliest_date(stores: Stores) -> None:
    assert mark_pending(stores, "../../athlete", date(2026, 3, 5)) is True
    assert mark_pending(stores, "../../athlete", date(2026, 3, 2)) is False
    assert mark_pending(stores, "../../athlete", date(2026, 3, 9)) is False
    markers = list((stores.settings.data_dir / ".pending-recompute").glob("*.json"))
    assert len(markers) == 1 and ".." not in markers[0].name  # the id never names the file
    assert take_pending(stores, "../../athlete") == (True, date(2026, 3, 2))
    assert take_pending(stores, "../../athlete") == (False, None)
    assert mark_pending(stores, "../../athlete", date(2026, 3, 9)) is True  # a new burst


def test_full_recompute_wins_and_lost_jobs_are_requeued(stores: Stores) -> None:
    assert mark_pending(stores, "a", date(2026, 3, 5))
    assert not mark_pending(stores, "a", None)
    assert take_pending(stores, "a") == (True, None)
    assert mark_pending(stores, "b", date(2026, 3, 5))
    marker = next((stores.settings.data_dir / ".pending-recompute").glob("*.json"))
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "at": time.time() - 3 * 330}))
    assert mark_pending(stores, "b", date(2026, 3, 6)) is True  # the old job looks lost
