"""CPU time of named groups of processes, counted so that a process that exits still counts.

PostgreSQL forks a backend per connection and reaps it when the connection closes; a sum over the
live processes of a tree, read from /proc before and after a window, loses what an exited backend
used, and can come out negative. `CpuMeter` keeps it, in one of two ways:

- **a cgroup per group** (cgroup v1's `cpuacct.usage`, or cgroup v2's `cpu.stat` `usage_usec`): the
  kernel charges every task of the cgroup to its counter, a process forked inside stays inside, and
  the counter keeps what exited tasks used. It needs root (or a delegated subtree): the meter makes
  `brokage-bench-<pid>/<group>` at the root of the hierarchy, moves each group's process tree in,
  and at the end moves every process back to where its group's root came from and removes them.
- **the parents' `cutime`/`cstime`**, where no cgroup can be made: when a parent reaps a child, the
  kernel adds the child's CPU (with what the child had reaped) to the parent's children times, so a
  tree's figure is the sum over its live processes of their own and their children times. It misses
  a process reaped outside the tree (a daemon's double fork) or by a parent that ignores SIGCHLD.

`CpuMeter.method` says which one counted; results.json records it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.processes import process_trees

CGROUP_V1 = "cgroup v1 cpuacct.usage"
CGROUP_V2 = "cgroup v2 cpu.stat usage_usec"
CUTIME = "cutime/cstime of the live processes of each tree"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants, those it has reaped included (0 if it is gone)."""
    total = 0.0
    for process in process_trees({"tree": (pid, True)}).get("tree", []):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # it ended since the scan; its parent's children times hold it once reaped
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass(frozen=True)
class Hierarchy:
    """A mounted cgroup hierarchy that can count CPU: v1 with the cpuacct controller, or v2."""

    mount: Path
    version: int
    schedules: bool = False  # v1's cpu controller is mounted with cpuacct: a cgroup is also a scheduling group

    @classmethod
    def find(cls, mounts: str = "/proc/self/mounts") -> Hierarchy | None:
        found: dict[int, Hierarchy] = {}
        with contextlib.suppress(OSError), open(mounts) as lines:
            for line in lines:
                _device, mount, kind, options, *_ = line.split()
                if kind == "cgroup" and "cpuacct" in options.split(","):
                    found.setdefault(1, cls(Path(mount), 1, schedules="cpu" in options.split(",")))
                elif kind == "cgroup2":
                    found.setdefault(2, cls(Path(mount), 2))
        return found.get(1) or found.get(2)  # v1 first: where both are mounted, cpuacct is v1's

    def sweep(self) -> None:
        """Cgroups left by a run that was killed before it could remove them: their processes go back
        to the root of the hierarchy (where they were is not known any more) and the cgroups go."""
        for base in self.mount.glob("brokage-bench-*"):
            owner = base.name.split("-")[2]
            if owner.isdigit() and psutil.pid_exists(int(owner)):
                continue
            for cgroup in [*base.iterdir(), base]:
                if cgroup.is_dir():
                    for member in _members(cgroup):
                        with contextlib.suppress(OSError):
                            _move(self.mount, member)
                    with contextlib.suppress(OSError):
                        cgroup.rmdir()

    def cgroup_of(self, pid: int) -> str:
        """The process's cgroup in this hierarchy, relative to its mount ("/" at the root)."""
        with open(f"/proc/{pid}/cgroup") as lines:
            for line in lines:
                number, controllers, path = line.rstrip("\n").split(":", 2)
                if (self.version == 2 and number == "0" and not controllers) or (
                    self.version == 1 and "cpuacct" in controllers.split(",")
                ):
                    return path
        return "/"

    def usage_seconds(self, cgroup: Path) -> float:
        if self.version == 1:
            return int((cgroup / "cpuacct.usage").read_text()) / 1e9
        for line in (cgroup / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        raise OSError(f"no usage_usec in {cgroup / 'cpu.stat'}")


def _move(cgroup: Path, pid: int) -> None:
    """Move a process (all its threads) into `cgroup`; one that has ended is left alone."""
    try:
        (cgroup / "cgroup.procs").write_text(str(pid))
    except ProcessLookupError:
        pass
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise


def _members(cgroup: Path) -> set[int]:
    with contextlib.suppress(OSError):
        return {int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()}
    return set()


@dataclass
class CpuMeter:
    """CPU seconds so far of each named group of process trees (see the module's docstring).

    `add(name, pid)` puts a process and its descendants in the group `name` (more than once for a
    process restarted under the same name); `seconds()` reads every group; `close()` (or leaving the
    `with` block) moves the processes back and removes the cgroups."""

    use_cgroups: bool = True
    mounts: str = "/proc/self/mounts"  # where the cgroup hierarchies are found (a test picks one)
    method: str = CUTIME
    fallback_reason: str = ""
    warnings: list[str] = field(default_factory=list)
    _hierarchy: Hierarchy | None = None
    _base: Path | None = None
    _cgroups: dict[str, Path] = field(default_factory=dict)
    _origins: dict[str, str] = field(default_factory=dict)
    _roots: dict[str, list[int]] = field(default_factory=dict)
    _last_seen: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.use_cgroups:
            self.fallback_reason = "cgroups not asked for"
            return
        hierarchy = Hierarchy.find(self.mounts)
        if hierarchy is None:
            self.fallback_reason = "no cgroup hierarchy with CPU accounting is mounted"
            return
        base = hierarchy.mount / f"brokage-bench-{os.getpid()}-{id(self):x}"
        hierarchy.sweep()
        try:
            base.mkdir()
            if hierarchy.version == 2 and not (base / "cpu.stat").exists():
                base.rmdir()
                raise OSError("cgroup v2 without cpu.stat")
        except OSError as exc:
            self.fallback_reason = f"cannot make a cgroup under {hierarchy.mount}: {exc}"
            return
        self._hierarchy, self._base = hierarchy, base
        self.method = CGROUP_V1 if hierarchy.version == 1 else CGROUP_V2
        if hierarchy.schedules:
            self.warnings.append(
                "cpuacct is mounted with the cpu controller: each group also shares the CPU as one scheduling group"
            )

    def __enter__(self) -> CpuMeter:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def add(self, name: str, pid: int) -> None:
        self._roots.setdefault(name, []).append(pid)
        if self._base is None:
            return
        cgroup = self._cgroups.get(name)
        try:
            if cgroup is None:
                cgroup = self._base / name.replace("/", "-").replace(":", "-")
                self._origins[name] = self._hierarchy.cgroup_of(pid)
                cgroup.mkdir()
                self._cgroups[name] = cgroup
            self._move_tree(cgroup, pid)
        except (OSError, ValueError) as exc:
            self.warnings.append(f"{name} (pid {pid}) not moved into its cgroup: {exc}")

    def _move_tree(self, cgroup: Path, pid: int) -> None:
        """The root and every descendant, until a scan finds none outside (a fork during the move)."""
        for _ in range(5):
            inside = _members(cgroup)
            outside = [p.pid for p in process_trees({"tree": (pid, True)}).get("tree", []) if p.pid not in inside]
            if not outside:
                return
            for member in outside:
                _move(cgroup, member)

    def seconds(self) -> dict[str, float]:
        """CPU seconds so far of each group (a difference of two readings is the window's)."""
        if self._base is not None:
            return {name: self._hierarchy.usage_seconds(cgroup) for name, cgroup in self._cgroups.items()} | {
                name: self._tree_seconds(roots) for name, roots in self._roots.items() if name not in self._cgroups
            }
        return {name: self._tree_seconds(roots) for name, roots in self._roots.items()}

    def _tree_seconds(self, roots: list[int]) -> float:
        """A root that has ended (and was restarted) counts with what it had used when last read."""
        total = 0.0
        for pid in roots:
            if psutil.pid_exists(pid):
                self._last_seen[pid] = tree_cpu_seconds(pid)
            total += self._last_seen.get(pid, 0.0)
        return total

    def close(self, timeout: float = 10.0) -> None:
        if self._base is None:
            return
        deadline = time.monotonic() + timeout
        for name, cgroup in self._cgroups.items():
            origin = self._hierarchy.mount / self._origins.get(name, "/").lstrip("/")
            while True:
                for member in _members(cgroup):
                    with contextlib.suppress(OSError):
                        _move(origin, member)
                try:
                    cgroup.rmdir()
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        self.warnings.append(f"cgroup {cgroup} left behind: {exc}")
                        break
                    time.sleep(0.1)  # a process forked while the others were moved out
        with contextlib.suppress(OSError):
            self._base.rmdir()
        self._cgroups.clear()
        self._base = None
