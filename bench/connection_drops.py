"""Saves while PostgreSQL drops connections at random: every failure must be transient
(UNAVAILABLE, retried by the worker), never a permanent one that loses the save.

    python -m bench.connection_drops [--saves 1500] [--every-ms 30 150]

One process, no Celery: a thread ends the database's server processes every 30-150 ms while
the main thread saves sessions and marks them pending, as `save_session` does. It prints how
many saves succeeded and how many failed with each error code, and exits 1 if any failure
was not transient.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from storage.errors import PersistenceError
from storage.settings import Settings
from storage.stores import Stores
from tasks import sessions
from tests.factories import session_payload
from tests.services import PG_ADMIN_URL, postgres_database


def drop_connections(database: str, stop: threading.Event, every_ms: tuple[float, float]) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    kill = sa.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = :d AND pid <> pg_backend_pid()"
    )
    with admin.connect() as connection:
        while not stop.wait(random.uniform(*every_ms) / 1000):
            connection.execute(kill, {"d": database})
    admin.dispose()


def save_all(stores: Stores, count: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for n in range(count):
        try:
            saved = sessions.save_session(stores, session_payload(n, _id=str(uuid.uuid4())))
            for athlete, since in saved.recompute_from.items():
                stores.coordination.mark_pending(athlete, since, marks=saved.marks.get(athlete))
            outcomes["saved"] += 1
        except PersistenceError as error:
            outcomes[f"{error.code.value} ({'transient' if error.transient else 'PERMANENT'})"] += 1
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=1500)
    parser.add_argument("--every-ms", type=float, nargs=2, default=[30.0, 150.0])
    args = parser.parse_args()
    with postgres_database() as url:
        stores = Stores(Settings.for_home(Path(tempfile.mkdtemp()), database_url=url))
        stores.initialize()
        stop = threading.Event()
        name = sa.engine.make_url(url).database
        assert name is not None
        dropper = threading.Thread(target=drop_connections, args=(name, stop, args.every_ms))
        started = time.perf_counter()
        dropper.start()
        try:
            outcomes = save_all(stores, args.saves)
        finally:
            stop.set()
            dropper.join()
            stores.close()
    print(
        f"{args.saves} saves in {time.perf_counter() - started:.1f}s, connections dropped "
        f"every {args.every_ms[0]:g}-{args.every_ms[1]:g} ms:"
    )
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome}: {count}")
    sys.exit(1 if any("PERMANENT" in outcome for outcome in outcomes) else 0)


if __name__ == "__main__":
    main()
