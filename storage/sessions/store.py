"""Sessions in SQL: one row per session plus queryable exercise and set rows, written together."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from storage.sessions.model import TrainingSession
from storage.sessions.rows import child_rows, session_row, stored_time, utc
from storage.sql.database import Database
from storage.sql.named_locks import Held, holding_and_reading
from storage.sql.prepared import FetchedRow, PreparedStatement, Read
from storage.sql.schema import sql_table

FileWrite = Callable[["SaveOutcome"], None]


@dataclass(frozen=True)
class SaveOutcome:
    """Whether the rows changed, and whose and when the session was before a change (a
    re-saved session may move day or athlete: both old and new days need new metrics)."""

    changed: bool
    previous_athlete: str | None = None
    previous_date: datetime | None = None
    previous_json_path: str | None = None
    read_after: FetchedRow | None = None  # the row of `SessionStore.save(read_after=...)`


@dataclass(frozen=True)
class StoredSession:
    session_id: str
    payload_hash: str
    json_path: str | None
    version: int
    updated_at: datetime  # UTC


class SessionStore:
    def __init__(self, database: Database, *, lock_timeout: float = 10.0) -> None:
        self.database = database
        self.lock_timeout = lock_timeout
        self.sessions = sql_table("training_sessions")
        self.exercises = sql_table("session_exercises")
        self.sets = sql_table("session_sets")
        self._previous = sa.select(
            self.sessions.c.payloadHash,
            self.sessions.c.version,
            self.sessions.c.createdAt,
            self.sessions.c.userId,
            self.sessions.c.date,
            self.sessions.c.jsonPath,
        ).where(self.sessions.c.sessionId == sa.bindparam("sid"))
        dialect = database.engine.dialect
        # the statements of every save, compiled once (see storage/sql/prepared.py)
        self._stored_hash = PreparedStatement(
            sa.select(self.sessions.c.payloadHash).where(
                self.sessions.c.sessionId == sa.bindparam("sid")
            ),
            dialect,
        )
        self._inserts = {
            table.name: PreparedStatement(sa.insert(table), dialect)
            for table in (self.sessions, self.exercises, self.sets)
        }

    @contextmanager
    def holding(
        self,
        session_id: str,
        json_path: str,
        *,
        first: Read | None = None,
        last: Read | None = None,
    ) -> Iterator[Held]:
        """The session and its file name, held across the save of its rows and of its file:
        the rows and the file always change in the same order, and two sessions never
        write one file (PostgreSQL advisory locks; lock files beside an SQLite database).
        `first` and `last`: reads in the round trips that take and free the locks."""
        keys = (f"trainlog:session:{session_id}", f"trainlog:export:{Path(json_path).name}")
        with holding_and_reading(
            self.database, keys, self.lock_timeout, first=first, last=last
        ) as held:
            yield held

    def save(
        self,
        session: TrainingSession,
        json_path: str,
        *,
        check_file: Callable[[], None] | None = None,
        write_file: FileWrite | None = None,
        read_after: Read | None = None,
    ) -> SaveOutcome:
        """Holding the session and its file name: `check_file` (which may refuse the save
        before anything is written), the rows (unchanged when the same content was already
        stored), then `write_file`. The rows are committed before the file is written, so a
        file that fails (a full disk) is written by the retry. `read_after` is run once all
        is written, in the round trip that frees the locks (`SaveOutcome.read_after`)."""
        stored_hash = Read(self._stored_hash, {"sid": session.session_id})
        with self.holding(
            session.session_id, json_path, first=stored_hash, last=read_after
        ) as held:
            if check_file is not None:
                check_file()
            outcome = self._save_rows(held, session, json_path)
            if write_file is not None:
                write_file(outcome)
        return replace(outcome, read_after=held.last)

    def _save_rows(self, held: Held, session: TrainingSession, json_path: str) -> SaveOutcome:
        """The stored hash was read as the locks were taken (they keep it current): the same
        content writes nothing, a new session's rows go in one pipelined transaction (one
        round trip on PostgreSQL), a changed one's rows are replaced."""
        digest = session.content_hash()
        sid = session.session_id
        stored = held.first
        if stored is not None:
            with self.database.autocommit(connection=held.connection) as connection:
                if stored[0] == digest or self._stored_document(connection, sid) == (
                    session.document()
                ):  # the same payload, or its own export read back
                    return SaveOutcome(False)
        with self.database.transaction(
            write=True,
            table="training_sessions",
            connection=held.connection,
            pipelined=stored is None,
        ) as connection:
            if stored is None:
                self._insert(connection, session, digest, json_path, created=None, version=1)
                return SaveOutcome(True)
            old = connection.execute(self._previous, {"sid": sid}).one()
            for child in (self.sets, self.exercises):  # its rows are replaced as a whole
                connection.execute(sa.delete(child).where(child.c.sessionId == sid))
            connection.execute(sa.delete(self.sessions).where(self.sessions.c.sessionId == sid))
            self._insert(
                connection, session, digest, json_path, old.createdAt, version=old.version + 1
            )
        return SaveOutcome(True, old.userId, old.date, old.jsonPath)

    def _insert(
        self,
        connection: sa.Connection,
        session: TrainingSession,
        digest: str,
        json_path: str,
        created: datetime | None,
        *,
        version: int,
    ) -> None:
        """Statements whose results are not read, so they may be pipelined."""
        dialect = self.database.dialect
        now = stored_time(datetime.now(UTC), dialect)
        row = session_row(
            session,
            digest=digest,
            json_path=json_path,
            now=now,
            created=created or now,
            version=version,
            dialect=dialect,
        )
        self._inserts["training_sessions"].execute(connection, [row])
        exercise_rows, set_rows = child_rows(session, now)
        self._inserts["session_exercises"].execute(connection, exercise_rows)
        self._inserts["session_sets"].execute(connection, set_rows)

    def _stored_document(self, connection: sa.Connection, session_id: str) -> Any:
        return connection.execute(
            sa.select(self.sessions.c.document).where(self.sessions.c.sessionId == session_id)
        ).scalar()

    def get(self, session_id: str) -> StoredSession | None:
        with self.database.transaction(table="training_sessions") as connection:
            row = (
                connection.execute(
                    sa.select(self.sessions).where(self.sessions.c.sessionId == session_id)
                )
                .mappings()
                .first()
            )
        return _stored(row) if row else None

    def iterate(self, batch: int = 1000) -> Iterator[StoredSession]:
        after = ""
        while True:
            query = (
                sa.select(self.sessions)
                .where(self.sessions.c.sessionId > after)
                .order_by(self.sessions.c.sessionId)
                .limit(batch)
            )
            with self.database.transaction(table="training_sessions") as connection:
                rows = connection.execute(query).mappings().all()
            yield from (_stored(row) for row in rows)
            if len(rows) < batch:
                return
            after = rows[-1]["sessionId"]

    def load(self, session_id: str) -> TrainingSession | None:
        """The stored export document, parsed (used to re-export exactly what was saved)."""
        with self.database.transaction(table="training_sessions") as connection:
            document = connection.execute(
                sa.select(self.sessions.c.document).where(self.sessions.c.sessionId == session_id)
            ).scalar()
        return None if document is None else TrainingSession.from_document(document)

    def unsynced_activities(self, batch: int = 500) -> Iterator[list[tuple[TrainingSession, int]]]:
        """Sessions whose activity row is not written for their current version, with that
        version, parsed, in batches by id (a change re-inserts the row with none)."""
        c = self.sessions.c
        after = ""
        while True:
            query = (
                sa.select(c.sessionId, c.version, c.document)
                .where(c.activityVersion.is_(None), c.sessionId > after)
                .order_by(c.sessionId)
                .limit(batch)
            )
            with self.database.transaction(table="training_sessions") as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            yield [(TrainingSession.from_document(doc), version) for _, version, doc in rows]
            after = rows[-1].sessionId

    def mark_activities_synced(self, versions: Sequence[tuple[str, int]]) -> None:
        """Note that these sessions' activity rows are written, each for the version read; a
        session changed meanwhile (another version) stays unsynced."""
        if not versions:
            return
        c = self.sessions.c
        update = (
            sa.update(self.sessions)
            .where(c.sessionId == sa.bindparam("sid"), c.version == sa.bindparam("v"))
            .values(activityVersion=sa.bindparam("v"))
        )
        # no lock: a save of one of them meanwhile gives it a new version this update skips
        with self.database.transaction(write=True, table="training_sessions") as connection:
            connection.execute(update, [{"sid": sid, "v": v} for sid, v in versions])

    def count(self) -> int:
        with self.database.transaction(table="training_sessions") as connection:
            return int(
                connection.execute(
                    sa.select(sa.func.count()).select_from(self.sessions)
                ).scalar_one()
            )


def _stored(row: Any) -> StoredSession:
    updated = row["updatedAt"]
    updated = utc(updated)  # SQLite: naive UTC
    return StoredSession(
        row["sessionId"], row["payloadHash"], row["jsonPath"], row["version"], updated
    )
