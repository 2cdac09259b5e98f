"""Parsed CSV files kept in memory by a digest of their bytes: a process re-parses only the
files whose content changed since it last parsed them (the metrics flush reads the same
thresholds, athletes and plans every few seconds). Keyed by content, not by inode, size and
mtime, so a file rewritten within one clock tick into a recycled inode is never served stale
(hashing is cheap next to parsing: docs/benchmarks.md)."""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pandas as pd

CACHED_ROWS = 100_000  # rows kept in all (about 50-100 MB); least recently used out first
CACHED_FILE_ROWS = 20_000  # larger files are parsed every time (bulk jobs read them once)
CACHED_FILE_BYTES = 4 << 20  # larger files are not even hashed

Signature = tuple[int, int, int]
Parse = Callable[[bytes], pd.DataFrame]


def file_signature(path: Path) -> Signature | None:
    """(inode, size, mtime): enough to tell an append or a replace (the key lists use it)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FrameCache:
    """Least recently used parsed files, bounded by their total rows."""

    def __init__(self, rows: int = CACHED_ROWS, file_rows: int = CACHED_FILE_ROWS) -> None:
        self._frames: OrderedDict[Path, tuple[bytes, pd.DataFrame]] = OrderedDict()
        self._rows, self._limit, self._file_limit = 0, rows, file_rows
        self.hits = self.misses = 0

    def parse(self, path: Path, raw: bytes, parse: Parse) -> pd.DataFrame:
        """`parse(raw)`, or a copy of the frame parsed from the same bytes of `path` before."""
        if len(raw) > CACHED_FILE_BYTES:
            return parse(raw)
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        known = self._frames.get(path)
        if known is not None and known[0] == digest:
            self._frames.move_to_end(path)
            self.hits += 1
            return known[1].copy()  # callers may change theirs; ours stays as parsed
        self.misses += 1
        self._drop(path)
        frame = parse(raw)
        if len(frame) <= self._file_limit:
            self._frames[path] = (digest, frame.copy())
            self._rows += len(frame)
            while self._rows > self._limit and self._frames:
                self._drop(next(iter(self._frames)))
        return frame

    def _drop(self, path: Path) -> None:
        known = self._frames.pop(path, None)
        if known is not None:
            self._rows -= len(known[1])
