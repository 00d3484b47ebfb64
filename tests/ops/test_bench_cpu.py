"""`bench.cputime` counts the CPU of a process group so that a process that exits during the window
still counts (a PostgreSQL backend that served a connection and ended), in a cgroup where one can
be made and from the parent's children times where not; `python -m bench.cpu` names threads as the
kernel does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")
cputime = pytest.importorskip("bench.cputime")
cpu = pytest.importorskip("bench.cpu")

BURN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
# A parent that idles until told to go, then runs a child that burns half a second of CPU and exits.
PARENT = f"""
import subprocess, sys
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", {BURN!r}], check=True)
print("done", flush=True)
sys.stdin.readline()
"""


def counted_during_a_child_that_exits(meter) -> tuple[float, float]:
    """The meter's figure for a parent over a window in which its child burnt 0.5 s and exited,
    and the parent's own CPU."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        meter.add("parent", parent.pid)
        before = meter.seconds()["parent"]
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "done"
        after = meter.seconds()["parent"]
        own = psutil.Process(parent.pid).cpu_times()
        return after - before, own.user + own.system
    finally:
        meter.close()
        parent.kill()
        parent.wait()


def test_the_cutime_fallback_counts_a_child_that_exited():
    meter = cputime.CpuMeter(use_cgroups=False)
    assert meter.method == cputime.CUTIME
    counted, own = counted_during_a_child_that_exits(meter)
    assert own < 0.45  # the parent itself only waited: a sum of the live processes would miss the child...
    assert counted >= 0.45  # ...which its children times hold once it reaped it


def test_a_cgroup_counts_a_child_that_exited_and_is_removed_afterwards():
    meter = cputime.CpuMeter()
    if meter.method == cputime.CUTIME:
        pytest.skip(f"no cgroup can be made here: {meter.fallback_reason}")
    base = meter._base
    counted, _own = counted_during_a_child_that_exits(meter)
    assert counted >= 0.45
    assert meter.warnings == []
    assert not base.exists()  # the processes moved back, the cgroups removed


def test_a_cgroup_v2_hierarchy_is_found_in_the_mount_table(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
    assert cputime.Hierarchy.find(str(mounts)) == cputime.Hierarchy(Path("/sys/fs/cgroup"), 2)
    mounts.write_text(
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
    )
    # v1 first; its cpu controller beside cpuacct makes each group a scheduling group too (said in a warning)
    assert cputime.Hierarchy.find(str(mounts)) == cputime.Hierarchy(Path("/sys/fs/cgroup/cpu,cpuacct"), 1, True)
    mounts.write_text("proc /proc proc rw 0 0\n")
    assert cputime.Hierarchy.find(str(mounts)) is None
    assert cputime.CpuMeter(mounts=str(mounts)).method == cputime.CUTIME


def test_a_process_that_is_gone_counts_nothing():
    assert cputime.tree_cpu_seconds(2**22 + 1) == 0.0


# A parent that idles while its child burns about half a second of CPU and then waits to be counted.
LIVE_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import sys, time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass\\n"
    "print('burnt', flush=True)\\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_threads_are_counted_by_the_name_the_kernel_gives_them():
    parent = subprocess.Popen([sys.executable, "-c", LIVE_CHILD], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        assert cputime.tree_cpu_seconds(parent.pid) >= 0.45  # the live child's half second
        by_thread = cpu.thread_cpu_seconds(parent.pid)
        assert max(by_thread.values()) >= 0.45, by_thread  # the child's main thread, under its name
    finally:
        if child is not None:
            os.kill(child, 9)
        parent.kill()
        parent.wait()


def test_cgroups_left_by_a_killed_run_are_removed_and_their_processes_kept():
    hierarchy = cputime.Hierarchy.find()
    if hierarchy is None:
        pytest.skip("no cgroup hierarchy")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: the owner of the cgroups left behind
    left = hierarchy.mount / f"brokage-bench-{dead.pid}-0" / "web"
    try:
        left.mkdir(parents=True)
    except OSError as exc:
        pytest.skip(f"no cgroup can be made here: {exc}")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (left / "cgroup.procs").write_text(str(sleeper.pid))
        cputime.CpuMeter().close()
        assert not left.parent.exists()
        assert sleeper.poll() is None  # still running, back at the root of the hierarchy
        assert hierarchy.cgroup_of(sleeper.pid) == "/"
    finally:
        sleeper.kill()
        sleeper.wait()
