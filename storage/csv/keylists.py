"""Which keys each month file of a partitioned table holds, so a writer finds the month of a
key without parsing every month. Kept in memory per file signature (inode, size, mtime) and
beside the file as `.<month>.keys`, so a new process reads a short list instead of the month.

Appending a row to a month appends its key to the list in place: the cost of a single-row
save does not grow with the month. The list's first line is fixed-width and names the file
signature, the key count, the byte length of the keys that follow and a generation drawn at
random whenever the list is written whole; it is rewritten after the keys are appended, so a
list whose first line matches its month lists all its keys, and a torn or stale list is
simply read again from the month (the month is the truth). A process that knows a list of
the same generation reads only the keys appended since (another worker's saves), not the
whole list again."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import pandas as pd

from storage.csv.cache import Signature, file_signature

SIDECAR_MAGIC = "trainlog-keys 3"
HEADER_BYTES = len(f"{SIDECAR_MAGIC} {0:020d} {0:020d} {0:020d} {0:012d} {0:012d} {0:016x}\n")
MERGE_ADDED = 4096  # keys appended in memory before they are merged into the hashed index

# what a list file says: month signature, key count, byte length of the keys, generation
Listed = tuple[Signature, int, int, int]
UNLISTED = -1  # count, length and generation of a month whose keys have no list


def _unlisted(signature: Signature) -> Listed:
    return (signature, UNLISTED, UNLISTED, UNLISTED)


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

    def extend(self, keys: Sequence[Hashable]) -> None:
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
        if known is not None and self._read_appended(path, signature, known[1]):
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
                self._listed[path] = _unlisted(signature)
                return
            grown = _append_list(path, listed, signature, added)
            if grown is not None:
                self._listed[path] = grown
                return
        self._listed[path] = _write_list(path, signature, known[1].as_index())

    def _read_appended(self, path: Path, signature: Signature, keys: PartKeys) -> bool:
        """Catch up with keys another process appended to a list we know: True when the
        list on disk is ours plus appended keys, and those are now in `keys`."""
        listed = self._listed.get(path)
        if listed is None or listed[1] < 0:
            return False
        grown = _read_tail(path, signature, listed)
        if grown is None:
            return False
        added, self._listed[path] = grown
        keys.extend(added)
        self._known[path] = (signature, keys)
        return True

    def _forget(self, path: Path) -> None:
        self._known.pop(path, None)
        self._listed.pop(path, None)


def sidecar_path(path: Path) -> Path:
    return path.parent / f".{path.stem}.keys"


def _header(signature: Signature, count: int, length: int, generation: int) -> bytes:
    ino, size, mtime = signature
    numbers = f"{ino:020d} {size:020d} {mtime:020d} {count:012d} {length:012d} {generation:016x}"
    return f"{SIDECAR_MAGIC} {numbers}\n".encode()


def _parse_header(header: bytes) -> Listed | None:
    parts = header.decode("ascii", "replace").split()
    if len(parts) != 8 or " ".join(parts[:2]) != SIDECAR_MAGIC:
        return None
    try:
        ino, size, mtime, count, length = (int(part) for part in parts[2:7])
        return (ino, size, mtime), count, length, int(parts[7], 16)
    except ValueError:
        return None


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
    listed = _parse_header(data[:HEADER_BYTES])
    body = data[HEADER_BYTES:]
    if listed is None or listed[0] != signature or len(body) != listed[2]:
        return None
    keys = _split_keys(body)
    if keys is None or len(keys) != listed[1]:
        return None
    return pd.Index(keys, dtype=object), listed


def _read_tail(path: Path, signature: Signature, known: Listed) -> tuple[list[str], Listed] | None:
    """The keys appended to a list since it was `known` (same generation, grown), or None."""
    _, count, length, generation = known
    try:
        with open(sidecar_path(path), "rb") as handle:
            listed = _parse_header(handle.read(HEADER_BYTES))
            if (
                listed is None
                or listed[0] != signature
                or listed[3] != generation
                or listed[1] < count
                or listed[2] < length
            ):
                return None
            handle.seek(HEADER_BYTES + length)
            tail = handle.read(listed[2] - length)
    except OSError:
        return None
    if len(tail) != listed[2] - length:
        return None
    if count and tail:  # keys appended after others start with their separator
        if not tail.startswith(b"\n"):
            return None
        tail = tail[1:]
    added = _split_keys(tail)
    if added is None or len(added) != listed[1] - count:
        return None
    return added, listed


def _split_keys(body: bytes) -> list[str] | None:
    try:
        text = body.decode("utf-8")
    except ValueError:
        return None
    return text.split("\n") if text else []


def _write_list(path: Path, signature: Signature, keys: pd.Index) -> Listed:
    """Best effort and unsynced: a missing or stale list only costs a re-read of the month."""
    target = sidecar_path(path)
    body = _listable(keys)
    if body is None:
        with contextlib.suppress(OSError):
            target.unlink()
        return _unlisted(signature)  # no list on disk: never appended to
    data = body.encode("utf-8")
    generation = secrets.randbits(64)
    temp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(_header(signature, len(keys), len(data), generation) + data)
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        return _unlisted(signature)
    return (signature, len(keys), len(data), generation)


def _append_list(
    path: Path, listed: Listed, signature: Signature, added: list[Hashable]
) -> Listed | None:
    """Append keys in place: the keys first, then the header naming the new signature."""
    _, count, length, generation = listed
    text = _listable(added)
    if count < 0 or text is None:
        return None
    piece = (("\n" if count else "") + text).encode("utf-8") if added else b""
    try:
        with open(sidecar_path(path), "r+b") as handle:
            if handle.read(HEADER_BYTES) != _header(*listed):
                return None  # changed by another process: write it whole
            handle.seek(HEADER_BYTES + length)
            handle.write(piece)
            handle.truncate()
            handle.seek(0)
            grown = (signature, count + len(added), length + len(piece), generation)
            handle.write(_header(*grown))
    except OSError:
        return None
    return grown
