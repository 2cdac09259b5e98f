"""State the workers coordinate through, kept in SQL so every host sees the same: athletes
waiting for a metrics recompute (coalesced into one flush job), named marks (the flush
scheduled, the rollup watermark, the export folder's identity) and the lock that lets one
recompute write at a time. PostgreSQL serves several hosts; the embedded SQLite one."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from storage.sql.database import Database
from storage.sql.named_locks import holding
from storage.sql.prepared import FetchedRow, PreparedStatement, Read
from storage.sql.schema import sql_table

PENDING_LOCK = "trainlog:pending"  # held while the pending athletes or the flush mark change
METRICS_LOCK = "trainlog:metrics"  # held for a recompute's reads and writes
FLUSH = "flush-scheduled"
# after its due time, how long a flush may not have started before the next change schedules
# another: its worker may have been killed holding it (Redis hands it out again only after
# the visibility timeout). A second flush of a busy queue finds the marks taken, or does them
FLUSH_GRACE_SECONDS = 60
WATERMARK = "rollup-watermark"

Since = date | None  # None: recompute everything


@dataclass(frozen=True)
class Taken:
    """Pending marks a recompute took: each athlete's first day (None: all) and the stamp
    taking it left, which `Coordination.clear` compares."""

    since: dict[str, Since] = field(default_factory=dict)
    stamps: dict[str, float] = field(default_factory=dict)


def _as_date(value: date | str) -> date:
    """A DATE as the driver returns it from a raw cursor (SQLite: ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


class Coordination:
    """One database's coordination state. A flush mark older than `flush_lost_after` seconds
    belongs to a job that looks lost, so the next change schedules another."""

    def __init__(
        self,
        database: Database,
        *,
        lock_timeout: float,
        flush_lost_after: float,
        taken_lost_after: float,
    ):
        self.database = database
        self.lock_timeout = lock_timeout
        self.flush_lost_after = flush_lost_after
        self.taken_lost_after = taken_lost_after
        self.pending = sql_table("recompute_pending")
        self.marks = sql_table("coordination_marks")
        self._marks_of = sa.select(
            self.pending.c.athleteId, self.pending.c.since, self.pending.c.markedAt
        )
        athlete = self.pending.c.athleteId == sa.bindparam("athlete")
        self._mark_and_flush = PreparedStatement(
            sa.select(
                sa.exists().where(
                    athlete, self.pending.c.markedAt >= sa.literal_column("0")
                ),  # untaken
                sa.select(self.pending.c.since).where(athlete).scalar_subquery(),
                sa.select(self.marks.c.markedAt)
                .where(self.marks.c.name == sa.bindparam("flush"))
                .scalar_subquery(),
            ),
            database.engine.dialect,
        )

    @contextmanager
    def _changing(self) -> Iterator[Connection]:
        with (
            holding(self.database, [PENDING_LOCK], self.lock_timeout) as held,
            self.database.transaction(write=True, connection=held) as connection,
        ):
            yield connection

    def mark_pending(self, athlete: str, since: Since, *, marks: FetchedRow | None = None) -> bool:
        """Note that `athlete` needs a recompute from `since` (an earlier pending date wins).
        True when the caller must schedule the flush job: none is scheduled, or it looks lost.

        A mark already covered, with a live flush scheduled, is answered by a read without the
        lock, so a stream of saves does not queue on it: the change was committed before this
        call, and a flush that takes the mark afterwards reads the data after taking it.
        `marks`: the row of `marks_read(athlete)`, if the caller ran it after its change."""
        if self._covered_and_live(marks or self._read_marks(athlete), since):
            return False
        with self._changing() as connection:
            self._merge(connection, {athlete: since})
            return self._claim_flush(connection)

    def forget_flush(self) -> None:
        """Undo the flush mark of a `mark_pending` whose job could not be sent, so the next
        mark schedules one; the athletes stay pending."""
        with self._changing() as connection:
            connection.execute(self.marks.delete().where(self.marks.c.name == FLUSH))

    def take_pending(self, athlete: str) -> Taken:
        """One athlete's mark, unless a running recompute has taken it (see `take_all_pending`)."""
        with self._changing() as connection:
            return self._take(connection, self.pending.c.athleteId == athlete)

    def take_all_pending(self) -> Taken:
        """Every pending athlete no running recompute has taken, and the flush mark removed:
        a change from now on schedules the next flush. Taken marks stay until `clear`,
        stamped as taken (a negative `markedAt`, the time taken): a worker killed
        mid-recompute, or a database that went away, leaves them, and once `taken_lost_after`
        (the hard time limit, which no run outlives) has passed the next run takes them."""
        with self._changing() as connection:
            connection.execute(self.marks.delete().where(self.marks.c.name == FLUSH))
            return self._take(connection, sa.true())

    def _take(self, connection: Connection, which: Any) -> Taken:
        now = time.time()
        free = sa.and_(which, self.pending.c.markedAt > -(now - self.taken_lost_after))
        rows = connection.execute(self._marks_of.where(free)).all()
        if not rows:
            return Taken()
        c = self.pending.c
        stamp = sa.update(self.pending).where(c.athleteId == sa.bindparam("a"))
        connection.execute(stamp.values(markedAt=-now), [{"a": row[0]} for row in rows])
        return Taken({str(a): since for a, since, _ in rows}, {str(a): -now for a, _, _ in rows})

    def clear(self, taken: Taken) -> None:
        """Remove the marks a finished recompute took, except those a change stamped anew
        since (it may have come after the recompute read its inputs): the next flush does
        them."""
        self._still_taken(self.pending.delete(), taken)

    def release(self, taken: Taken) -> None:
        """Give back the marks of a recompute that failed (those still as it took them), for
        its retry or the next flush to take at once."""
        self._still_taken(sa.update(self.pending).values(markedAt=time.time()), taken)

    def _still_taken(self, statement: Any, taken: Taken) -> None:
        """Run `statement` on each mark `taken` holds that no change has stamped since."""
        if not taken.stamps:
            return
        c = self.pending.c
        mine = statement.where(c.athleteId == sa.bindparam("a"), c.markedAt == sa.bindparam("s"))
        with self._changing() as connection:
            connection.execute(mine, [{"a": a, "s": s} for a, s in taken.stamps.items()])

    def pending_athletes(self) -> dict[str, Since]:
        """The athletes waiting for a recompute, left in place (for monitors)."""
        with self.database.transaction() as connection:
            rows = connection.execute(sa.select(self.pending.c.athleteId, self.pending.c.since))
            return {str(athlete): since for athlete, since in rows}

    def merge_pending(self, since: Mapping[str, Since]) -> None:
        """Mark these athletes pending (an earlier date wins), without scheduling a flush."""
        if since:
            with self._changing() as connection:
                self._merge(connection, since)

    def read_mark(self, name: str) -> str | None:
        with self.database.transaction() as connection:
            found = connection.execute(
                sa.select(self.marks.c.value).where(self.marks.c.name == name)
            ).first()
        return None if found is None else found[0]

    def write_mark(self, name: str, value: str) -> None:
        with self.database.transaction(write=True) as connection:
            self._set_mark(connection, name, value)

    def claim_mark(self, name: str, value: str) -> str:
        """Set mark `name` to `value` unless it is set: the value in place afterwards (of
        two hosts claiming at once, one wins and both see its value)."""
        with self._changing() as connection:
            found = connection.execute(
                sa.select(self.marks.c.value).where(self.marks.c.name == name)
            ).first()
            if found is not None:
                return str(found[0])
            self._set_mark(connection, name, value)
            return value

    @contextmanager
    def metrics_lock(self, timeout: float) -> Iterator[None]:
        """One recompute at a time on this database, on whichever host it runs, so a run that
        read its inputs earlier never overwrites a newer one's rows."""
        with holding(self.database, [METRICS_LOCK], timeout):
            yield

    def marks_read(self, athlete: str) -> Read:
        """The read `mark_pending`'s fast path starts with, for a caller that can run it in a
        round trip of its own (a save, as it frees its locks)."""
        return Read(self._mark_and_flush, {"athlete": athlete, "flush": FLUSH})

    def _read_marks(self, athlete: str) -> FetchedRow:
        """One statement on the cursor, outside a transaction (it runs after every save)."""
        with self.database.autocommit() as connection:
            row = self.marks_read(athlete).first(connection)
        assert row is not None  # a select without FROM returns one row
        return row

    def _covered_and_live(self, marks: FetchedRow, since: Since) -> bool:
        """The athlete is pending from `since` or earlier and a live flush is scheduled."""
        found, day, marked_at = marks
        if not found or marked_at is None or time.time() - float(marked_at) > self.flush_lost_after:
            return False
        if day is None:  # pending in full
            return True
        return since is not None and _as_date(day) <= since

    def _claim_flush(self, connection: Connection) -> bool:
        """Set the flush mark unless a live one is there: True when this call set it."""
        now = time.time()
        claim = self._insert(self.marks).on_conflict_do_update(
            index_elements=["name"],
            set_={"value": "scheduled", "markedAt": now},
            where=self.marks.c.markedAt < now - self.flush_lost_after,
        )
        row = {"name": FLUSH, "value": "scheduled", "markedAt": now}
        claimed = connection.execute(claim.execution_options(preserve_rowcount=True), row)
        return claimed.rowcount == 1  # 0: the WHERE kept a live one

    def _merge(self, connection: Connection, since: Mapping[str, Since]) -> None:
        """Insert each athlete's mark, or move it to the earlier date (None, everything, wins),
        in one upsert statement instead of a read and a write."""
        insert = self._insert(self.pending)
        current, new = self.pending.c.since, insert.excluded.since
        earliest = sa.case(
            (sa.or_(current.is_(None), new.is_(None)), sa.null()),
            (new < current, new),
            else_=current,
        )
        upsert = insert.on_conflict_do_update(  # a new stamp: a running flush keeps the mark
            index_elements=["athleteId"],
            set_={"since": earliest, "markedAt": insert.excluded.markedAt},
        )
        now = time.time()
        rows = [
            {"athleteId": athlete, "since": day, "markedAt": now} for athlete, day in since.items()
        ]
        connection.execute(upsert, rows)

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that takes ON CONFLICT, in this database's dialect (SQLite 3.24+)."""
        if self.database.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _set_mark(self, connection: Connection, name: str, value: str | None) -> None:
        now = time.time()
        upsert = self._insert(self.marks).on_conflict_do_update(
            index_elements=["name"], set_={"value": value, "markedAt": now}
        )
        connection.execute(upsert, {"name": name, "value": value, "markedAt": now})
