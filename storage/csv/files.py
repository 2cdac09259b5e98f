"""One CSV file on disk: replaced atomically (temp file, fsync, os.replace) or appended to in
whole lines (fsync'd; a partial last line left by a killed appender is cut first)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from storage.atomic import replace_with
from storage.csv.cells import csv_header, csv_lines, write_csv_text
from storage.errors import Unavailable
from storage.tables import Table


def replace_file(path: Path, frame: pd.DataFrame, table: Table) -> None:
    """Temp file in the same folder, fsync, os.replace: a killed writer leaves the old file.
    Secret tables keep the temp file's 0600."""
    replace_with(path, lambda handle: write_csv_text(frame, table, handle), mode=_mode(table))


MAX_OPEN_PARTS = 64  # temp files open at once: a write spanning decades opens no more


def replace_files(
    paths: dict[int, Path], frame: pd.DataFrame, codes: np.ndarray, table: Table
) -> None:
    """Write the rows of `frame` whose code is a key of `paths` into that path, each file
    replaced atomically: rows are formatted once, in chunks, and streamed to the temp copies
    of up to MAX_OPEN_PARTS files at a time (a write spanning more is done in groups, each
    formatting only its rows); every copy is fsync'd and closed before the first is renamed
    into place."""
    chosen = sorted(paths)
    groups = [chosen[i : i + MAX_OPEN_PARTS] for i in range(0, len(chosen), MAX_OPEN_PARTS)]
    temps: list[tuple[Path, str]] = []
    try:
        for group in groups:
            if len(groups) == 1:
                rows, row_codes = frame, codes
            else:
                picked = np.flatnonzero(np.isin(codes, group))
                rows, row_codes = frame.iloc[picked], codes[picked]
            temps += _write_temps({code: paths[code] for code in group}, rows, row_codes, table)
        for path, temp in temps:
            os.replace(temp, path)
    except OSError as error:
        _discard(temps)
        where = next(iter(paths.values()), Path("?"))
        raise Unavailable(f"cannot write {where}: {error.strerror}", path=str(where)) from None
    except BaseException:
        _discard(temps)
        raise


def _write_temps(
    paths: dict[int, Path], frame: pd.DataFrame, codes: np.ndarray, table: Table
) -> list[tuple[Path, str]]:
    """Fsync'd, closed temp copies of `paths`, each holding the rows of its code."""
    handles: dict[int, tuple[Path, str, Any]] = {}
    try:
        for code, path in paths.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
            if (mode := _mode(table)) is not None:
                os.fchmod(fd, mode)
            handles[code] = (path, temp, os.fdopen(fd, "wb"))
            handles[code][2].write(csv_header(frame))
        for start, lines in csv_lines(frame, table):
            chunk = codes[start : start + len(lines)]
            for code in np.unique(chunk).tolist():
                if code in handles:
                    text = "\n".join(lines[chunk == code]) + "\n"
                    handles[code][2].write(text.encode("utf-8"))
        for _path, _temp, handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
    except BaseException:
        for _path, temp, handle in handles.values():
            with contextlib.suppress(OSError):
                handle.close()
            remove_quietly(temp)
        raise
    return [(path, temp) for path, temp, _handle in handles.values()]


def _discard(temps: list[tuple[Path, str]]) -> None:
    for _path, temp in temps:
        remove_quietly(temp)


def append_lines(path: Path, text: str) -> None:
    """Append whole lines and fsync, after cutting any partial last line. A write that fails
    part way (disk full, file size limit) is cut back off: no row of the batch is left."""
    data = memoryview(text.encode("utf-8"))
    try:
        with open(path, "r+b", buffering=0) as handle:
            start = _cut_partial_line(handle)
            try:
                while data:
                    data = data[handle.write(data) :]
                os.fsync(handle.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    handle.truncate(start)
                    os.fsync(handle.fileno())
                raise
    except OSError as error:
        raise Unavailable(f"cannot write {path}: {error.strerror}", path=str(path)) from None


def _cut_partial_line(handle: Any) -> int:
    """Leave the open file ending in a newline, dropping any partial last line; returns its
    new end, where the handle now is."""
    end = handle.seek(0, os.SEEK_END)
    position = end
    while position > 0:
        step = min(4096, position)
        handle.seek(position - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            position = position - step + newline + 1
            break
        position -= step
    if position != end:
        handle.truncate(position)
    handle.seek(position)
    return position


def _mode(table: Table) -> int | None:
    """Data files are world-readable (less the umask); secret tables keep mkstemp's 0600."""
    return None if table.secret else 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
