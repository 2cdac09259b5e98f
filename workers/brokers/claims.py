"""Messages the embedded broker handed to a consumer that has not acknowledged them yet. Each
stays in ``processed/<owner>/`` until it is acked, rejected or put back, so a worker killed
with SIGKILL does not lose the jobs it held: the next worker start puts back the claims of
owners that are gone. An owner is a process, named by the machine's boot, its pid and its
start time, so a pid reused after a reboot or by another process is not taken for it."""

from __future__ import annotations

import contextlib
import os
from functools import cache
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def owner_name() -> str:
    """This process as a claim folder name: ``<boot>-<pid>-<start time>``."""
    return _owner_of(os.getpid(), _boot())


@cache
def _owner_of(pid: int, boot: str) -> str:
    return f"{boot}-{pid}-{_started(pid)}"


def _boot() -> str:
    try:
        return BOOT_ID.read_text().strip().replace("-", "")[:12] or "boot"
    except OSError:
        return "boot"  # no /proc: owners are told apart by pid alone


def _started(pid: int) -> str:
    """The process's start time in clock ticks after boot (Linux), or "0" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    fields = stat.rpartition(")")[2].split()  # the name, in brackets, may hold spaces
    return fields[19] if len(fields) > 19 else "0"


def owner_alive(name: str) -> bool:
    """Whether the process a claim folder is named after still runs."""
    boot, _, rest = name.partition("-")
    pid_text, _, started = rest.partition("-")
    if not pid_text.isdigit() or boot != _boot():
        return False  # not a claim folder of this boot: its owner is gone
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    return started in ("0", _started(pid))


def recover_claims(processed: Path, queue: Path) -> int:
    """Put the messages claimed by owners that are gone back in the queue, under their own
    names, so in their place in line (a queue is served by the send time in the names);
    returns how many. Loose files (the layout before claims, when a taken message was deleted
    at once) are removed."""
    restored = 0
    for entry in sorted(processed.iterdir()) if processed.is_dir() else []:
        if not entry.is_dir():
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        if owner_alive(entry.name):
            continue
        for message in entry.iterdir():
            try:
                os.replace(message, queue / message.name)
                restored += 1
            except FileNotFoundError:
                continue  # another starting worker put it back first
        with contextlib.suppress(OSError):
            entry.rmdir()
    return restored
