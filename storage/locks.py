"""Lock files held with flock (portalocker): the sidecar `<name>.csv.lock` of a CSV table (its data
file is replaced, so it cannot hold a lock), and the named locks of an SQLite database."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import portalocker

from storage.errors import LockTimeout, Unavailable


@contextmanager
def acquire_lock(
    lock_path: Path, *, exclusive: bool, timeout: float, mode: int = 0o644
) -> Iterator[None]:
    """Hold a shared or exclusive lock on `lock_path`, waiting at most `timeout` seconds."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, mode)
    except OSError as error:
        raise Unavailable(
            f"cannot open lock file {lock_path}: {error.strerror}", path=str(lock_path)
        ) from None
    handle = os.fdopen(fd, "r+")
    flags = portalocker.LockFlags.EXCLUSIVE if exclusive else portalocker.LockFlags.SHARED
    deadline = time.monotonic() + timeout
    pause = 0.001
    try:
        while True:
            try:
                portalocker.lock(handle, flags | portalocker.LockFlags.NON_BLOCKING)
                break
            except portalocker.exceptions.LockException:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"could not lock {lock_path.with_suffix('')} within {timeout:g}s: "
                        "another process holds it",
                        path=str(lock_path.with_suffix("")),
                    ) from None
                time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
                pause = min(pause * 2, 0.01)
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
