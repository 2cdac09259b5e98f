"""Which keys each month file of a partitioned table holds, so a writer finds the month of a
key without parsing every month. Kept in memory per file signature (inode, size, mtime) and
beside the file as `.<month>.keys`, so a new process reads a short list instead of the month.

Appending a row to a month appends its key to the list in place: the cost of a single-row
save does not grow with the month. The list's first line is fixed-width and names the file
signature, the key count and the byte length of the keys that follow; it is rewritten after
the keys are appended, so a list whose first line matches its month lists all its keys, and
a torn or stale list is simply read again from the month (the month is the truth)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Hashable
from pathlib import Path

import pandas as pd

from storage.csv.cache import Signature, file_signature

SIDECAR_MAGIC = "trainlog-keys 2"
HEADER_BYTES = len(f"{SIDECAR_MAGIC} {0:020d} {0:020d} {0:020d} {0:012d} {0:012d}\n")
MERGE_ADDED = 4096  # keys appended in memory before they are merged into the hashed index

Listed = tuple[Signature, int, int]  # what a list file says: signature, key count, byte length


class PartKeys:
    """The keys of one month: a hashed index plus the keys appended since it was built."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index
        self._added: list[Hashable] = []
        self._added_set: set[Hashable] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._added_set or key in self.index

    def __len__(self) -> int:
        return len(self.index) + len(self._added)

    def any_in(self, wanted: pd.Index) -> bool:
        if self._added_set and any(key in self._added_set for key in wanted):
            return True
        return bool(self.index.isin(wanted).any())

    def extend(self, keys: list[Hashable]) -> None:
        self._added.extend(keys)
        self._added_set.update(keys)
        if len(self._added) > MERGE_ADDED:
            self.index = self.as_index()
            self._added, self._added_set = [], set()

    def as_index(self) -> pd.Index:
        if not self._added:
            return self.index
        return self.index.append(pd.Index(self._added, tupleize_cols=True))


class KeyCache:
    """Key lists of month files by signature: only files that changed are read again."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[Signature, PartKeys]] = {}
        self._listed: dict[Path, Listed] = {}

    def keys(self, path: Path, load: Callable[[], pd.Index]) -> PartKeys:
        signature = file_signature(path)
        if signature is None:
            self._forget(path)
            return PartKeys(pd.Index([], dtype=object))
        known = self._known.get(path)
        if known is not None and known[0] == signature:
            return known[1]
        listed = _read_list(path, signature)
        if listed is None:
            index = load()
            self._listed[path] = _write_list(path, signature, index)
        else:
            index, self._listed[path] = listed
        self._known[path] = (signature, PartKeys(index))
        return self._known[path][1]

    def remember(self, path: Path, index: pd.Index) -> None:
        """The month was rewritten and holds exactly these keys."""
        signature = file_signature(path)
        if signature is None:
            self._forget(path)
            return
        self._known[path] = (signature, PartKeys(index))
        self._listed[path] = _write_list(path, signature, index)

    def appended(self, path: Path, before: Signature | None, added: list[Hashable]) -> None:
        """Rows with these new keys were appended to the month, whose signature was `before`."""
        known = self._known.get(path)
        signature = file_signature(path)
        if known is None or signature is None or known[0] != before:
            self._forget(path)
            return
        known[1].extend(added)
        self._known[path] = (signature, known[1])
        listed = self._listed.pop(path, None)
        if listed is not None and listed[0] == before:
            if listed[1] < 0:  # keys that cannot be listed: there is no list to keep up
                self._listed[path] = (signature, -1, -1)
                return
            grown = _append_list(path, listed, signature, added)
            if grown is not None:
                self._listed[path] = grown
                return
        self._listed[path] = _write_list(path, signature, known[1].as_index())

    def _forget(self, path: Path) -> None:
        self._known.pop(path, None)
        self._listed.pop(path, None)


def sidecar_path(path: Path) -> Path:
    return path.parent / f".{path.stem}.keys"


def _header(signature: Signature, count: int, length: int) -> bytes:
    ino, size, mtime = signature
    return (
        f"{SIDECAR_MAGIC} {ino:020d} {size:020d} {mtime:020d} {count:012d} {length:012d}\n".encode()
    )


def _listable(keys: pd.Index | list[Hashable]) -> str | None:
    """The keys as newline-separated text, or None when one is not a newline-free string."""
    if isinstance(keys, pd.Index):
        if isinstance(keys, pd.MultiIndex) or pd.api.types.infer_dtype(keys, skipna=False) not in (
            "string",
            "empty",
        ):
            return None
        values = keys.tolist()
    elif all(type(value) is str for value in keys):
        values = keys
    else:
        return None
    body = "\n".join(values)  # a list joins at C speed; an Index yields one by one
    return body if body.count("\n") == max(len(values) - 1, 0) else None


def _read_list(path: Path, signature: Signature) -> tuple[pd.Index, Listed] | None:
    try:
        data = sidecar_path(path).read_bytes()
    except OSError:
        return None
    header, body = data[:HEADER_BYTES], data[HEADER_BYTES:]
    parts = header.decode("ascii", "replace").split()
    if len(parts) != 7 or " ".join(parts[:2]) != SIDECAR_MAGIC:
        return None
    try:
        numbers = [int(part) for part in parts[2:]]
        text = body.decode("utf-8")
    except ValueError:
        return None
    count, length = numbers[3], numbers[4]
    if tuple(numbers[:3]) != signature or len(body) != length:
        return None
    keys = text.split("\n") if text else []
    if len(keys) != count:
        return None
    return pd.Index(keys, dtype=object), (signature, count, length)


def _write_list(path: Path, signature: Signature, keys: pd.Index) -> Listed:
    """Best effort and unsynced: a missing or stale list only costs a re-read of the month."""
    target = sidecar_path(path)
    body = _listable(keys)
    if body is None:
        with contextlib.suppress(OSError):
            target.unlink()
        return (signature, -1, -1)  # no list on disk: never appended to
    data = body.encode("utf-8")
    temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(_header(signature, len(keys), len(data)) + data)
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        return (signature, -1, -1)
    return (signature, len(keys), len(data))


def _append_list(
    path: Path, listed: Listed, signature: Signature, added: list[Hashable]
) -> Listed | None:
    """Append keys in place: the keys first, then the header naming the new signature."""
    before, count, length = listed
    text = _listable(added)
    if count < 0 or text is None:
        return None
    piece = (("\n" if count else "") + text).encode("utf-8") if added else b""
    try:
        with open(sidecar_path(path), "r+b") as handle:
            if handle.read(HEADER_BYTES) != _header(before, count, length):
                return None  # changed by another process: write it whole
            handle.seek(HEADER_BYTES + length)
            handle.write(piece)
            handle.truncate()
            handle.seek(0)
            grown = (signature, count + len(added), length + len(piece))
            handle.write(_header(*grown))
    except OSError:
        return None
    return grown
