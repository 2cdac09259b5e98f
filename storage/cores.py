"""How many CPU cores this process may use: its CPU affinity (a cpuset), capped by the CFS
quota of its cgroup or of any parent (`docker run --cpus`, a Kubernetes CPU limit), on
cgroup v1 or v2. A pool sized from the affinity alone would start a process per host core in
a container allowed one core."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

PROC_SELF = Path("/proc/self")


def usable_cores(proc: Path = PROC_SELF) -> int:
    """The affinity's core count, lowered to a CPU quota rounded up (1.5 CPUs -> 2)."""
    cores = affinity_cores()
    quota = cpu_quota(proc)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def affinity_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_quota(proc: Path = PROC_SELF) -> float | None:
    """The tightest CFS quota over this process's cgroup and its parents, in CPUs; None when
    no cgroup limits it, or it cannot be read (not Linux, /proc or /sys not mounted)."""
    try:
        mounts = (proc / "mountinfo").read_text()
        groups = (proc / "cgroup").read_text()
    except OSError:
        return None
    quotas = [
        quota
        for mount, folder in cpu_cgroup_folders(mounts, groups)
        for quota in _quotas_up_to(mount, folder)
    ]
    return min(quotas, default=None)


def cpu_cgroup_folders(mounts: str, groups: str) -> Iterator[tuple[Path, Path]]:
    """(mount point, this process's cgroup folder under it) of each hierarchy holding the
    cpu controller: the v1 one named `cpu` and the v2 unified one."""
    paths = {}  # hierarchy controllers ("" for v2) -> this process's cgroup path
    for line in groups.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    for line in mounts.splitlines():
        fields = line.split(" - ", 1)
        if len(fields) != 2:
            continue
        before, after = fields[0].split(), fields[1].split()
        if len(before) < 5 or len(after) < 3:
            continue
        root, mount = _unescape(before[3]), Path(_unescape(before[4]))
        kind, options = after[0], after[2].split(",")
        if kind == "cgroup2":
            path = paths.get("")
        elif kind == "cgroup" and "cpu" in options:
            path = next((p for c, p in paths.items() if "cpu" in c.split(",")), None)
        else:
            continue
        if path is not None:
            yield mount, _folder_under(mount, root, path)


def _folder_under(mount: Path, root: str, path: str) -> Path:
    """The cgroup folder of `path` in a mount of the hierarchy's `root`; a container that
    sees its host's path (no cgroup namespace) has its own cgroup mounted as the root."""
    inside = root == "/" or path == root or path.startswith(root.rstrip("/") + "/")
    folder = mount / os.path.relpath(path, root) if inside else mount
    return folder if folder.is_dir() else mount


def _quotas_up_to(mount: Path, folder: Path) -> Iterator[float]:
    while True:
        quota = _quota_in(folder)
        if quota is not None:
            yield quota
        if folder == mount or mount not in folder.parents:
            return
        folder = folder.parent


def _quota_in(folder: Path) -> float | None:
    """The quota one cgroup folder sets, in CPUs; None for unlimited or unreadable."""
    try:
        if (folder / "cpu.max").exists():  # v2: "max 100000" or "150000 100000"
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        else:  # v1: cpu.cfs_quota_us is -1 when unlimited
            quota = (folder / "cpu.cfs_quota_us").read_text().strip()
            period = (folder / "cpu.cfs_period_us").read_text().strip()
        if quota == "max" or int(quota) <= 0 or int(period) <= 0:
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _unescape(field: str) -> str:
    """mountinfo writes a space in a path as \\040 (octal escapes)."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)
