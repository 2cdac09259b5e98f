"""Web console: the entries page (50 a page, filtered) of a 5,000-entry catalog, in ms of
server time per request (the ASGI app called in process), against a plain SQL query of the
same rows measured in the same run.

    python -m bench.web_entries [--entries 5000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from storage.seeds.entries import MUSCLE_GROUPS
from storage.seeds.sync import ensure_imported
from storage.settings import Settings
from storage.sql.schema import sql_table
from storage.stores import Stores
from workers.web.app import create_web_app

QUERIES = {
    "first page": "",
    "search": "q=press",
    "muscle + source": "muscle=quadriceps&source=factory&active=yes",
    "page 50": "page=50",
}


def fill(stores: Stores, count: int) -> None:
    table = sql_table("exercise_catalog")
    rows = [
        {
            "exerciseId": f"bench-{n:05d}",
            "name": f"{('Press', 'Squat', 'Row', 'Curl', 'Lunge')[n % 5]} variation {n}",
            "targetMuscleGroups": [MUSCLE_GROUPS[n % 25], MUSCLE_GROUPS[(n * 7) % 25]],
            "category": "bench",
            "equipment": "dumbbell",
            "source": "factory" if n % 3 else "user",
            "active": n % 11 != 0,
            "version": 1,
        }
        for n in range(count)
    ]
    with stores.database.transaction(write=True) as connection:
        connection.execute(sa.insert(table), rows)


def median_ms(step, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.for_home(Path(scratch), web_password="bench")
        stores = Stores(settings)
        stores.initialize()
        ensure_imported(stores.database)
        fill(stores, args.entries)
        table = sql_table("exercise_catalog")
        plain = sa.select(table).order_by(table.c.name).limit(50)
        with TestClient(create_web_app(settings)) as client:
            login = client.get("/login").text
            token = login.split('name="csrf" value="')[1].split('"')[0]
            client.post("/login", data={"user": "admin", "password": "bench", "csrf": token})
            with stores.database.engine.connect() as connection:
                baseline = median_ms(lambda: connection.execute(plain).all(), args.rounds)
            print(f"{args.entries:,} entries; plain SQL query of 50 rows: {baseline:.2f} ms")
            for label, query in QUERIES.items():
                url = f"/datasets/exercise_catalog/entries?{query}"
                assert client.get(url).status_code == 200
                page = median_ms(lambda url=url: client.get(url), args.rounds)
                ratio = page / baseline
                print(f"{label:<18} {page:6.1f} ms (target <= 50)   page / plain SQL {ratio:6.1f}")
        stores.close()


if __name__ == "__main__":
    main()
