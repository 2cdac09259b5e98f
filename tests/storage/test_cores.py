"""The default pool size counts the cores a process may use: its affinity, capped by a cgroup
CPU quota (v1 or v2, its own cgroup's or a parent's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.cores import PROC_SELF, affinity_cores, cpu_cgroup_folders, cpu_quota, usable_cores


def fake_proc(tmp_path: Path, mounts: list[str], groups: list[str]) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text("".join(line + "\n" for line in mounts))
    (proc / "cgroup").write_text("".join(line + "\n" for line in groups))
    return proc


def v2_mount(mount: Path, root: str = "/") -> str:
    return f"35 24 0:30 {root} {mount} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate"


def v1_mount(mount: Path, root: str = "/", options: str = "rw,cpu,cpuacct") -> str:
    return f"32 31 0:29 {root} {mount} rw,relatime - cgroup cgroup {options}"


def write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(text + "\n")


def test_v2_quota_of_the_own_cgroup_rounds_up(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount, cpu_max="150000 100000")
    proc = fake_proc(tmp_path, [v2_mount(mount)], ["0::/"])
    assert cpu_quota(proc) == 1.5
    assert usable_cores(proc) == min(affinity_cores(), 2)


def test_v2_the_tightest_parent_limit_wins(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup"
    write(mount / "system", cpu_max="400000 100000")
    write(mount / "system" / "job", cpu_max="50000 100000")
    write(mount / "system" / "job" / "worker", cpu_max="max 100000")
    proc = fake_proc(tmp_path, [v2_mount(mount)], ["0::/system/job/worker"])
    assert cpu_quota(proc) == 0.5
    assert usable_cores(proc) == 1  # half a core still runs one process


def test_v1_container_without_a_cgroup_namespace(tmp_path: Path) -> None:
    """The container sees its host's cgroup path; its own cgroup is mounted as the root."""
    mount = tmp_path / "cpu,cpuacct"
    write(mount, cpu_cfs_quota_us="200000", cpu_cfs_period_us="100000")
    proc = fake_proc(
        tmp_path,
        [v1_mount(mount, root="/docker/abc"), v1_mount(tmp_path / "memory", options="rw,memory")],
        ["5:memory:/docker/abc", "3:cpu,cpuacct:/docker/abc", "0::/"],
    )
    assert cpu_quota(proc) == 2.0


def test_unlimited_or_unreadable_cgroups_leave_the_affinity(tmp_path: Path) -> None:
    mount = tmp_path / "cpu"
    write(mount, cpu_cfs_quota_us="-1", cpu_cfs_period_us="100000")
    proc = fake_proc(tmp_path, [v1_mount(mount, options="rw,cpu")], ["1:cpu:/"])
    assert cpu_quota(proc) is None
    assert usable_cores(proc) == affinity_cores()
    assert cpu_quota(tmp_path / "no-proc-here") is None
    write(mount, cpu_cfs_quota_us="lots")
    assert cpu_quota(proc) is None


def test_a_mount_point_with_a_space_and_a_path_outside_the_mount_root(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup fs"
    write(mount, cpu_max="300000 100000")
    escaped = str(mount).replace(" ", "\\040")
    proc = fake_proc(
        tmp_path,
        [f"35 24 0:30 /kubepods {escaped} rw - cgroup2 cgroup2 rw"],
        ["0::/kubepods-other/pod"],
    )
    assert list(cpu_cgroup_folders((proc / "mountinfo").read_text(), "0::/x")) == [(mount, mount)]
    assert cpu_quota(proc) == 3.0


def own_cpu_cgroup() -> Path | None:
    """This process's folder in the real hierarchy holding the cpu controller, if writable."""
    try:
        folders = list(
            cpu_cgroup_folders(
                (PROC_SELF / "mountinfo").read_text(), (PROC_SELF / "cgroup").read_text()
            )
        )
    except OSError:
        return None
    for _mount, folder in folders:
        if (folder / "cpu.cfs_quota_us").exists() and os.access(folder, os.W_OK):
            return folder  # v1: any folder may hold processes, so a child cgroup works
    return None


def test_a_worker_in_a_real_cgroup_limited_to_half_a_core_runs_two_pool_processes() -> None:
    """A real cgroup v1 child with a CFS quota of 0.5 CPU; a process moved into it reads the
    default worker_concurrency as 1 core + 1, where its affinity alone would give more."""
    folder = own_cpu_cgroup()
    if folder is None:
        pytest.skip("needs a writable cgroup v1 cpu hierarchy (root on a v1 or hybrid host)")
    if affinity_cores() < 2:
        pytest.skip("with one core the quota cannot lower the count")
    limited = folder / f"trainlog-test-{os.getpid()}"
    limited.mkdir()
    try:
        (limited / "cpu.cfs_period_us").write_text("100000")
        (limited / "cpu.cfs_quota_us").write_text("50000")
        script = (
            "import os, sys\n"
            "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
            "from storage.settings import load_settings\n"
            "print(load_settings({}).worker_concurrency)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, str(limited / "cgroup.procs")],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parents[2],
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "2"
    finally:
        limited.rmdir()  # empty again once the child exited
