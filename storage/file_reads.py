"""Reading a file someone else put there (an import, a `@file` argument): only a regular file,
and only up to a limit, both checked with `stat` before a byte is read. A FIFO or a device
would block the reader or never end, and a 2 GB sparse file would be read whole first."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from storage.errors import CorruptFile, ValidationError

KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_bounded(path: Path, limit: int, *, what: str | None = None) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them: VALIDATION naming the
    file when it is something else or larger, CORRUPT when it cannot be read."""
    name = what or path.name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise CorruptFile(f"cannot read {name}: {error.strerror}", path=str(path)) from None
    try:
        info = os.fstat(fd)  # of what was opened: a file swapped in after a check is caught
        kind = stat.S_IFMT(info.st_mode)
        if kind != stat.S_IFREG:
            raise ValidationError(
                f"{name} is {KINDS.get(kind, 'not a regular file')}, not a regular file",
                path=str(path),
                field="path",
            )
        if info.st_size > limit:
            raise ValidationError(
                f"{name} is {info.st_size:,} bytes; the limit is {limit:,}",
                path=str(path),
                field="path",
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        raise CorruptFile(f"cannot read {name}: {error.strerror}", path=str(path)) from None
    finally:
        os.close(fd)
    if size > limit:  # it grew while read
        raise ValidationError(f"{name} is over {limit:,} bytes", path=str(path), field="path")
    return b"".join(chunks)
