"""Atomic file writes: temp file in the same folder, fsync, os.replace."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from storage.errors import Unavailable

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data`; a crash leaves the old file or the new one, never a mix.
    Plain `os` calls on a random temp name: half the CPU of mkstemp and a buffered file
    object, which matters on the save path (one export and one pending marker per save)."""
    temp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = _create(temp)
    except OSError as error:
        raise Unavailable(f"cannot write {path}: {error.strerror}", path=str(path)) from None
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as error:
        _remove_quietly(str(temp))
        raise Unavailable(f"cannot write {path}: {error.strerror}", path=str(path)) from None
    except BaseException:
        _remove_quietly(str(temp))
        raise


def _create(temp: Path) -> int:
    """Open a new private temp file, creating its folder on first use."""
    try:
        return os.open(temp, _CREATE, 0o600)
    except FileNotFoundError:
        temp.parent.mkdir(parents=True, exist_ok=True)
        return os.open(temp, _CREATE, 0o600)


def replace_with(path: Path, write: Callable[[BinaryIO], object], *, mode: int | None) -> None:
    """Replace `path` with what `write` puts in an open temp file of the same folder, fsync'd
    before `os.replace`. `mode` None keeps the temp file's private 0600."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise Unavailable(f"cannot write {path}: {error.strerror}", path=str(path)) from None
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        _remove_quietly(temp)
        raise Unavailable(f"cannot write {path}: {error.strerror}", path=str(path)) from None
    except BaseException:
        _remove_quietly(temp)
        raise


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
