"""CsvStorage: a CSV file per table (or per month of a partitioned table), every
read-modify-write under one exclusive sidecar lock per table, every file replaced atomically."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storage.csv.cache import FrameCache, file_signature
from storage.csv.cells import record_line
from storage.csv.codec import empty_frame, header_names, parse_frame, read_frame, read_keys
from storage.csv.files import append_lines, remove_quietly, replace_file, replace_files
from storage.csv.frames import as_frame, concat_rows, key_index, keys_index, merge_rows
from storage.csv.keylists import KeyCache, PartKeys, sidecar_path
from storage.csv.partitions import (
    WHOLE,
    is_partitioned,
    key_decides_part,
    part_ids,
    part_name_ok,
    row_parts,
)
from storage.errors import Unavailable
from storage.locks import acquire_lock
from storage.tables import Table

FrameChange = Callable[[pd.DataFrame], pd.DataFrame]
SMALL_LOOKUP = 16  # up to this many keys are looked up one by one


class CsvStorage:
    """Locked CSV files under `folder`; values keep their types; writes are atomic."""

    def __init__(self, folder: Path, *, lock_timeout: float = 10.0) -> None:
        self.folder = Path(folder)
        self.lock_timeout = lock_timeout
        self.key_cache = KeyCache()
        self.frame_cache = FrameCache()

    def path(self, table: Table) -> Path:
        """The table's file, or for a partitioned table the folder of its monthly files."""
        return self.folder / (table.name if is_partitioned(table) else f"{table.name}.csv")

    def part_path(self, table: Table, part: str) -> Path:
        return self.path(table) if part == WHOLE else self.path(table) / f"{part}.csv"

    def lock_path(self, table: Table) -> Path:
        return self.folder / f"{table.name}.csv.lock"

    def parts(self, table: Table) -> list[str]:
        """The parts on disk, oldest month first (an unpartitioned table has the one part)."""
        if not is_partitioned(table):
            return [WHOLE]
        try:
            names = [entry.name[:-4] for entry in os.scandir(self.path(table))]
        except FileNotFoundError:
            return []
        return sorted(n for n in names if part_name_ok(n))

    @contextmanager
    def locked(self, table: Table, *, exclusive: bool) -> Iterator[None]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Unavailable(
                f"cannot create CSV folder {self.folder}: {error.strerror}", path=str(self.folder)
            ) from None
        mode = 0o600 if table.secret else 0o644
        with acquire_lock(
            self.lock_path(table), exclusive=exclusive, timeout=self.lock_timeout, mode=mode
        ):
            yield

    def read(self, table: Table, parts: Iterable[str] | None = None) -> pd.DataFrame:
        """The table (or the given parts) under a shared lock; missing files read as empty."""
        with self.locked(table, exclusive=False):
            return self.read_parts(table, self.parts(table) if parts is None else parts)

    def write(self, table: Table, frame: pd.DataFrame) -> None:
        """Replace the whole table."""
        with self.locked(table, exclusive=True):
            self.write_parts(table, frame, self.parts(table))

    def modify(
        self,
        table: Table,
        change: FrameChange,
        parts: Iterable[str] | None = None,
        *,
        dirty: Callable[[], set[str]] | None = None,
    ) -> pd.DataFrame:
        """Read (the given parts of) the table, change and write back under one exclusive lock;
        returns the changed frame. Rows may only land in parts read or not yet on disk.
        `dirty`, asked after the change, names the only parts whose rows changed: the others
        are not rewritten."""
        with self.locked(table, exclusive=True):
            chosen = self.parts(table) if parts is None else sorted(set(parts))
            frame = change(self.read_parts(table, chosen))
            self.write_parts(table, frame, chosen, only=dirty() if dirty else None)
            return frame

    def append_rows(self, table: Table, rows: pd.DataFrame | Iterable[dict[str, Any]]) -> None:
        new = as_frame(table, rows)
        self.modify(table, lambda frame: concat_rows(table, frame, new), set(part_ids(table, new)))

    def upsert(
        self,
        table: Table,
        rows: pd.DataFrame | Iterable[dict[str, Any]],
        keys: tuple[str, ...] | None = None,
    ) -> None:
        """Insert or replace rows by key in O(n + k) (n: the rows of the months touched)."""
        new = as_frame(table, rows)
        touched = set(part_ids(table, new)) | self.locate(table, new)
        self.modify(table, lambda frame: merge_rows(table, frame, new, keys or table.key), touched)

    def delete(self, table: Table, keys: Iterable[tuple[Any, ...]]) -> int:
        """Remove rows by key; returns how many were removed."""
        doomed = keys_index(keys, len(table.key))
        removed = 0

        def drop(frame: pd.DataFrame) -> pd.DataFrame:
            nonlocal removed
            if doomed.empty or frame.empty:
                return frame
            hit = key_index(frame, table.key).isin(doomed)
            removed = int(hit.sum())
            return frame[~hit]

        self.modify(table, drop)
        return removed

    def locate(self, table: Table, rows: pd.DataFrame) -> set[str]:
        """The parts on disk already holding any key of `rows` (for a key that may move)."""
        if not is_partitioned(table) or key_decides_part(table) or rows.empty:
            return set()
        return self.locate_keys(table, key_index(rows, table.key))

    def locate_keys(self, table: Table, wanted: pd.Index | Sequence[Hashable]) -> set[str]:
        """The parts on disk holding any of these keys (frame form: a value, or a tuple of
        values for a composite key), read from the months' key lists."""
        if len(wanted) <= SMALL_LOOKUP:  # a hash probe per key beats building isin's table
            return {
                part
                for part in self.parts(table)
                if any(key in self._part_keys(table, part) for key in wanted)
            }
        index = wanted if isinstance(wanted, pd.Index) else pd.Index(list(wanted))
        return {part for part in self.parts(table) if self._part_keys(table, part).any_in(index)}

    def _part_keys(self, table: Table, part: str) -> PartKeys:
        path = self.part_path(table, part)
        return self.key_cache.keys(path, lambda: read_keys(path, table))

    def read_parts(self, table: Table, parts: Iterable[str]) -> pd.DataFrame:
        """Parse the given parts (caller holds the lock). A key found in two months (a writer
        killed while moving a row) keeps its highest version."""
        paths = [self.part_path(table, part) for part in parts]
        frames = [self._parse_part(table, path) for path in paths]
        frames = [frame for frame in frames if not frame.empty]
        if not frames:
            return empty_frame(table)
        if len(frames) == 1:
            return frames[0]
        frame = pd.concat(frames, ignore_index=True)
        if not key_decides_part(table) and key_index(frame, table.key).duplicated().any():
            frame = frame.sort_values("version", kind="stable", na_position="first")
            frame = frame[~key_index(frame, table.key).duplicated(keep="last")].sort_index()
        return frame

    def _parse_part(self, table: Table, path: Path) -> pd.DataFrame:
        """One part's rows, parsed again only when its bytes changed (caller holds the lock)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return empty_frame(table)
        whole_lines = is_partitioned(table)
        return self.frame_cache.parse(
            path, raw, lambda data: parse_frame(data, path, table, whole_lines=whole_lines)
        )

    def write_parts(
        self,
        table: Table,
        frame: pd.DataFrame,
        parts: Iterable[str],
        only: set[str] | None = None,
    ) -> None:
        """Write `frame` over the given parts (caller holds the lock), or only over the parts
        in `only`; a part left without rows is removed. New rows first, removals last, so a
        crash never loses a row."""
        chosen = set(parts)
        codes, names = row_parts(table, frame)
        present = {names[code] for code in np.unique(codes).tolist()}
        foreign = present - chosen
        if foreign & set(self.parts(table)):
            raise RuntimeError(f"{table.name}: rows for parts not read: {sorted(foreign)}")
        targets = chosen | present if only is None else only
        code_of = {name: code for code, name in enumerate(names)}
        writes = {code_of[p]: self.part_path(table, p) for p in targets if p in present}
        if WHOLE in targets and not writes:  # an unpartitioned table keeps its (empty) file
            replace_file(self.part_path(table, WHOLE), frame, table)
        replace_files(writes, frame, codes, table)  # new rows first, removals after
        for part in sorted(targets - present - {WHOLE}):
            path = self.part_path(table, part)
            remove_quietly(str(path))
            remove_quietly(str(sidecar_path(path)))
        if is_partitioned(table) and not key_decides_part(table):
            keys = frame[table.key[0]].to_numpy(dtype=object) if len(table.key) == 1 else None
            for code, path in writes.items():
                rows = np.flatnonzero(codes == code)
                found = (
                    pd.Index(keys[rows], dtype=object)
                    if keys is not None
                    else key_index(frame.iloc[rows], table.key)
                )
                self.key_cache.remember(path, found)

    def append_records(self, table: Table, part: str, records: list[dict[str, Any]]) -> bool:
        """Append new rows (frame form, keys in no part) to an existing month in O(k), caller
        holding the lock; False when the month must be rewritten instead (missing, or an
        older header). A partial line left by a killed appender is cut first."""
        path = self.part_path(table, part)
        if part == WHOLE or not path.exists():
            return False
        with open(path, "rb") as handle:
            header = header_names(handle.readline(), path, table)
        if set(table.headers) - set(header):
            return False
        if not key_decides_part(table):
            self._part_keys(table, part)  # known before the append, so the append extends it
        before = file_signature(path)
        text = "".join(record_line(record, header, table) + "\n" for record in records)
        append_lines(path, text)
        if not key_decides_part(table):
            added = [
                record.get(table.key[0])
                if len(table.key) == 1
                else tuple(record.get(name) for name in table.key)
                for record in records
            ]
            self.key_cache.appended(path, before, added)
        return True

    def migrate_headers(self, table: Table) -> list[str]:
        """Add the definition's missing columns in place, keeping every value; returns them.
        A partitioned table still in one file (older layout) is split into its months."""
        with self.locked(table, exclusive=True):
            legacy = self.folder / f"{table.name}.csv"
            if is_partitioned(table) and legacy.is_file():
                present = set(read_frame(legacy, table, add_missing=False).columns)
                frame = read_frame(legacy, table)
                self.write_parts(table, frame, self.parts(table))
                legacy.unlink()
                return [name for name in table.headers if name not in present] if present else []
            added: set[str] = set()
            for part in self.parts(table):
                path = self.part_path(table, part)
                if not path.exists() or not path.read_bytes().strip():
                    continue
                present = set(read_frame(path, table, add_missing=False).columns)
                missing = [name for name in table.headers if name not in present]
                if missing:
                    replace_file(path, read_frame(path, table), table)
                    added.update(missing)
            return [name for name in table.headers if name in added]


__all__ = ["CsvStorage", "as_frame", "concat_rows", "key_index", "merge_rows"]
