"""Parsed CSV files kept in memory by file signature (inode, size, mtime): a worker re-parses
only the files that changed since it last read them. Replacing a file changes its inode and
appending changes its size, so a stale frame is never returned."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

CACHED_ROWS = 100_000  # rows kept in all (about 50-100 MB); least recently used out first
CACHED_FILE_ROWS = 20_000  # larger files are parsed every time (bulk jobs read them once)

Signature = tuple[int, int, int]


def file_signature(path: Path) -> Signature | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FrameCache:
    """Least recently used parsed files, bounded by their total rows."""

    def __init__(self, rows: int = CACHED_ROWS, file_rows: int = CACHED_FILE_ROWS) -> None:
        self._frames: OrderedDict[Path, tuple[Signature, pd.DataFrame]] = OrderedDict()
        self._rows, self._limit, self._file_limit = 0, rows, file_rows

    def read(self, path: Path, load: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The parsed file (the caller holds its lock, so it cannot change meanwhile)."""
        signature = file_signature(path)
        known = self._frames.get(path)
        if known is not None and signature is not None and known[0] == signature:
            self._frames.move_to_end(path)
            return known[1].copy(deep=False)  # copy-on-write: callers cannot alter ours
        self._drop(path)
        frame = load()
        if signature is not None and len(frame) <= self._file_limit:
            self._frames[path] = (signature, frame)
            self._rows += len(frame)
            while self._rows > self._limit and self._frames:
                self._drop(next(iter(self._frames)))
            return frame.copy(deep=False)
        return frame

    def _drop(self, path: Path) -> None:
        known = self._frames.pop(path, None)
        if known is not None:
            self._rows -= len(known[1])
