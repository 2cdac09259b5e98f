"""CsvStorage: one CSV file per table, each read-modify-write under one exclusive sidecar lock."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from storage.csv.codec import empty_frame, frame_dtype, read_frame, write_csv_text
from storage.csv.locks import acquire_lock
from storage.errors import Unavailable, ValidationError
from storage.tables import Table

FrameChange = Callable[[pd.DataFrame], pd.DataFrame]


class CsvStorage:
    """Locked CSV files under `folder`; values keep their types; writes are atomic."""

    def __init__(self, folder: Path, *, lock_timeout: float = 10.0) -> None:
        self.folder = Path(folder)
        self.lock_timeout = lock_timeout

    def path(self, table: Table) -> Path:
        return self.folder / f"{table.name}.csv"

    def lock_path(self, table: Table) -> Path:
        return self.folder / f"{table.name}.csv.lock"

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

    def read(self, table: Table) -> pd.DataFrame:
        """The whole table under a shared lock; a missing or empty file is an empty table."""
        with self.locked(table, exclusive=False):
            return read_frame(self.path(table), table)

    def write(self, table: Table, frame: pd.DataFrame) -> None:
        """Replace the whole table."""
        with self.locked(table, exclusive=True):
            self._replace(table, frame)

    def modify(self, table: Table, change: FrameChange) -> pd.DataFrame:
        """Read, change and write back under one exclusive lock; returns what was written."""
        with self.locked(table, exclusive=True):
            frame = change(read_frame(self.path(table), table))
            self._replace(table, frame)
            return frame

    def append_rows(self, table: Table, rows: pd.DataFrame | Iterable[dict[str, Any]]) -> None:
        self.modify(table, lambda frame: concat_rows(table, frame, as_frame(table, rows)))

    def upsert(
        self,
        table: Table,
        rows: pd.DataFrame | Iterable[dict[str, Any]],
        keys: tuple[str, ...] | None = None,
    ) -> None:
        """Insert or replace rows by key in O(n + k)."""
        new = as_frame(table, rows)
        self.modify(table, lambda frame: merge_rows(table, frame, new, keys or table.key))

    def delete(self, table: Table, keys: Iterable[tuple[Any, ...]]) -> int:
        """Remove rows by key; returns how many were removed."""
        doomed = list(keys)
        removed = 0

        def drop(frame: pd.DataFrame) -> pd.DataFrame:
            nonlocal removed
            if not doomed or frame.empty:
                return frame
            hit = key_index(frame, table.key).isin(pd.MultiIndex.from_tuples(doomed))
            removed = int(hit.sum())
            return frame[~hit]

        self.modify(table, drop)
        return removed

    def migrate_headers(self, table: Table) -> list[str]:
        """Add the definition's missing columns in place, keeping every value; returns them."""
        with self.locked(table, exclusive=True):
            path = self.path(table)
            if not path.exists() or not path.read_bytes().strip():
                return []
            present = set(read_frame(path, table, add_missing=False).columns)
            added = [name for name in table.headers if name not in present]
            if added:
                self._replace(table, read_frame(path, table))
            return added

    def _replace(self, table: Table, frame: pd.DataFrame) -> None:
        """Temp file in the same folder, fsync, os.replace: a killed writer leaves the old file."""
        fd, temp = tempfile.mkstemp(prefix=f".{table.name}.", suffix=".tmp", dir=self.folder)
        try:
            if not table.secret:
                os.fchmod(fd, 0o644 & ~_umask())
            with os.fdopen(fd, "wb") as handle:
                write_csv_text(frame, table, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path(table))
        except OSError as error:
            _remove_quietly(temp)
            raise Unavailable(
                f"cannot write {self.path(table)}: {error.strerror}", path=str(self.path(table))
            ) from None
        except BaseException:
            _remove_quietly(temp)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def as_frame(table: Table, rows: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows (already in frame form: dates and JSON as text) -> a frame with the table's dtypes."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = [name for name in frame.columns if name not in table.headers]
    if unknown:
        raise ValidationError(
            f"{table.name}: unknown column {unknown[0]!r}", table=table.name, field=str(unknown[0])
        )
    for column in table.all_columns:
        if column.name not in frame.columns:
            frame[column.name] = pd.Series(
                [None] * len(frame), dtype=frame_dtype(column), index=frame.index
            )
        else:
            dtype = frame_dtype(column)
            series = frame[column.name]
            frame[column.name] = (
                series.astype(object).where(series.notna(), None)
                if (dtype == "object")
                else series.astype(dtype)
            )
    return frame[table.headers]


def key_index(frame: pd.DataFrame, keys: tuple[str, ...]) -> pd.Index:
    return pd.MultiIndex.from_frame(frame[list(keys)].astype(object))


def concat_rows(table: Table, frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return new.reset_index(drop=True) if not new.empty else empty_frame(table)
    if new.empty:
        return frame
    for name in frame.columns:
        if name not in new.columns:
            new[name] = None
    return pd.concat([frame, new[frame.columns]], ignore_index=True)


def merge_rows(
    table: Table, frame: pd.DataFrame, new: pd.DataFrame, keys: tuple[str, ...]
) -> pd.DataFrame:
    """Rows of `new` replace rows of `frame` with the same key (last one wins within `new`)."""
    new_keys = key_index(new, keys)
    new = new[~new_keys.duplicated(keep="last")]
    if frame.empty:
        return concat_rows(table, frame, new)
    frame_keys, new_keys = key_index(frame, keys), key_index(new, keys)
    replaced = frame_keys.isin(new_keys)
    extras = [name for name in frame.columns if name not in new.columns]
    if extras and replaced.any():  # unknown columns are kept: carry them to the new row
        old = frame.loc[replaced, extras].set_axis(frame_keys[replaced])
        new = new.copy()
        for name in extras:
            new[name] = old[name].reindex(new_keys).to_numpy()
    return concat_rows(table, frame[~replaced], new)
