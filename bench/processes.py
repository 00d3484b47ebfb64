"""Starting, watching and stopping the processes under test, and sampling their memory.

`ProcessGroup` reads `bench/Procfile.bench` (with `bench/Procfile.relay-celery` in the celery relay
mode: `procfiles_for`), starts each line in its own session (so a stop reaches a web server
master's workers and Celery's pool too) and stops exactly the processes it started, TERM first and
KILL after a grace period. `MemorySampler` records, once a second, the
resident memory of every started process tree and of the services (PostgreSQL, Redis, Kafka,
FerretDB, found by their listening ports).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PROCFILE = ROOT / "bench" / "Procfile.bench"
# The Celery relay's workers, one per context queue: started beside Procfile.bench's in the celery relay mode.
RELAY_PROCFILE = ROOT / "bench" / "Procfile.relay-celery"
RELAY_MODES = ("thread", "celery")


def service_ports() -> dict[str, int]:
    """The services' ports, from the same environment the system reads (scripts/services.sh env)."""

    def port(variable: str, default: int) -> int:
        value = os.environ.get(variable, "")
        netloc = urlsplit(value if "//" in value else f"//{value}")
        return netloc.port or default

    return {
        "postgres": port("DATABASE_URL_ORDERS", 55432),
        "redis": port("REDIS_URL", 6380),
        "kafka": port("KAFKA_BOOTSTRAP_SERVERS", 19092),
        "ferretdb": port("MONGODB_URL", 27018),
    }


def read_procfile(*paths: Path) -> dict[str, str]:
    """name → command of every line of the Procfiles (Procfile.bench when none is given)."""
    entries = {}
    for path in paths or (PROCFILE,):
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, command = line.partition(":")
            entries[name.strip()] = os.path.expandvars(command.strip())
    return entries


class MissingProcfile(FileNotFoundError):
    pass


def procfiles_for(relay: str, relay_procfile: Path = RELAY_PROCFILE) -> tuple[Path, ...]:
    """The Procfiles of the system in a relay mode: the celery mode adds the relay's workers."""
    if relay != "celery":
        return (PROCFILE,)
    if not relay_procfile.exists():
        raise MissingProcfile(
            f"{relay_procfile.name} is missing (bench/): it lists the Celery workers that drain the outboxes "
            "in the celery relay mode (one per context queue), so that mode cannot be measured"
        )
    return (PROCFILE, relay_procfile)


@dataclass
class Started:
    name: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class ProcessGroup:
    """The system's processes; like a process supervisor, it restarts one that exits during the run
    (at most `max_restarts` times each) and counts it, so one crash shows up in the results instead
    of silently stalling the saga."""

    env: dict[str, str]
    procfiles: tuple[Path, ...] = (PROCFILE,)
    max_restarts: int = 3
    started: list[Started] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    on_restart: object = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def _spawn(self, name: str, command: str) -> Started:
        logs = OUT / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(
            shlex.split(os.path.expandvars(command)),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return Started(name, process, log_path)

    def start(self, names: list[str] | None = None) -> None:
        for name, command in read_procfile(*self.procfiles).items():
            if names is None or name in names:
                (OUT / "logs" / f"{name}.log").unlink(missing_ok=True)
                self.started.append(self._spawn(name, command))

    def revive(self) -> list[str]:
        """Restart processes that exited; returns their names."""
        revived = []
        with self._lock:
            if self._stopping:
                return revived
            commands = read_procfile(*self.procfiles)
            for index, s in enumerate(self.started):
                if s.process.poll() is None or self.restarts.get(s.name, 0) >= self.max_restarts:
                    continue
                self.restarts[s.name] = self.restarts.get(s.name, 0) + 1
                self.started[index] = self._spawn(s.name, commands[s.name])
                revived.append(s.name)
                if callable(self.on_restart):
                    self.on_restart(s.name, self.started[index].process.pid)
        return revived

    def pids(self) -> dict[str, int]:
        return {s.name: s.process.pid for s in self.started}

    def dead(self) -> list[str]:
        return [s.name for s in self.started if s.process.poll() is not None]

    def stop(self, grace: float = 15.0) -> None:
        """TERM every started session, wait, then KILL what is left (only our own process groups)."""
        with self._lock:
            self._stopping = True
        for s in self.started:
            if s.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(s.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for s in self.started:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                s.process.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(s.process.pid, signal.SIGKILL)
                s.process.wait(5)
        self.started.clear()


def process_trees(roots: dict[str, tuple[int, bool]]) -> dict[str, list[psutil.Process]]:
    """For each name, its root process and (when its flag says whole tree) all the root's
    descendants, from one scan of the process table (psutil's `children` scans it once per call);
    a root that is gone is left out."""
    children: dict[int, list[psutil.Process]] = defaultdict(list)
    for process in psutil.process_iter(["ppid"]):
        children[process.info["ppid"]].append(process)
    trees = {}
    for name, (pid, whole_tree) in roots.items():
        try:
            tree = [psutil.Process(pid)]
        except psutil.Error:
            continue
        if whole_tree:
            for process in tree:  # grows as it goes: breadth first
                tree.extend(children.get(process.pid, []))
        trees[name] = tree
    return trees


def service_pids() -> dict[str, int]:
    """The pid listening on each service port (the service's main process)."""
    found = {}
    by_port = {port: name for name, port in service_ports().items()}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in by_port and conn.pid:
            found.setdefault(by_port[conn.laddr.port], conn.pid)
    return found


class MemorySampler(threading.Thread):
    """Memory of each watched process tree, every `interval` seconds, until stopped.

    For each name it keeps the peak of the tree's summed RSS and the peak RSS of its largest single
    process (for the web server, one worker; for PostgreSQL, one backend — their shared buffers are
    counted once per process by RSS, so the sum overstates them), a time series of the tree's PSS
    (shared pages divided among the processes sharing them), and two of each process: its anonymous
    memory (heap, arenas, stacks: what it allocated, whether or not a forked sibling still shares
    the pages) and its USS (the pages only it maps). The soak is judged on each process's anonymous
    memory, where a leak shows. Not on the tree's sum, which also moves when processes come and go
    (FerretDB opening and closing PostgreSQL connections); not on PSS or USS, which also rise when a
    PostgreSQL backend touches pages of `shared_buffers` for the first time (a shared mapping of
    fixed size: its pages count as a backend's own until another backend maps them too). The USS
    slopes are reported beside the judged ones.

    The sampler runs inside the load generator, on the machine it measures, so it keeps its own cost
    down: RSS (a counter the kernel keeps) every `interval`, for the peaks; every `detail_every`
    intervals the rollup (the kernel walks every page of the process for it), for the series, and
    the trees, from one scan of the process table (a process that starts between two scans is first
    sampled at the next). Sampling everything every second, with a scan per tree, cost 120-135 ms of
    CPU a second (105-110 of them in the kernel) with the bench's system up: an eighth of a core, in
    one burst a second.
    """

    def __init__(self, interval: float = 1.0, tick=None, *, detail_every: int = 1) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.detail_every = max(1, detail_every)
        self._samples = 0
        self._roots: dict[str, tuple[int, bool]] = {}
        self._trees: dict[str, list[psutil.Process]] = {}
        self.tick = tick  # called every interval (the process group's revive)
        self.watched: dict[str, int] = {}
        self.whole_tree: dict[str, bool] = {}
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.process_series: dict[tuple[str, int], list[tuple[float, float]]] = {}  # anonymous memory
        self.process_uss_series: dict[tuple[str, int], list[tuple[float, float]]] = {}
        self.peak_single: dict[str, float] = {}
        self.peak_total: dict[str, float] = {}
        self.marks: list[tuple[float, str]] = []
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def watch(self, name: str, pid: int, *, tree: bool = True) -> None:
        with self._lock:
            self.watched[name] = pid
            self.whole_tree[name] = tree

    def mark(self, label: str) -> None:
        self.marks.append((time.time(), label))

    def sample_once(self) -> None:
        now = time.time()
        detailed = self._samples % self.detail_every == 0
        self._samples += 1
        with self._lock:
            roots = {name: (pid, self.whole_tree.get(name, True)) for name, pid in self.watched.items()}
        if detailed or roots != self._roots:  # between scans, the trees as last scanned
            self._roots, self._trees = roots, process_trees(roots)
        for name, tree in self._trees.items():
            rss, pss = [], []
            for proc in tree:
                memory = process_memory(proc) if detailed else None
                try:
                    rss.append(memory.rss if memory else proc.memory_info().rss / 2**20)
                except psutil.Error:  # it ended since the scan
                    continue
                if memory is None:
                    continue
                pss.append(memory.pss)
                self.process_series.setdefault((name, proc.pid), []).append((now, memory.anonymous))
                self.process_uss_series.setdefault((name, proc.pid), []).append((now, memory.uss))
            if not rss:
                continue
            if pss:
                self.series.setdefault(name, []).append((now, sum(pss)))
            self.peak_total[name] = max(self.peak_total.get(name, 0.0), sum(rss))
            self.peak_single[name] = max(self.peak_single.get(name, 0.0), max(rss))

    def run(self) -> None:
        while not self._halt.is_set():
            if self.tick is not None:
                self.tick()
            self.sample_once()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def growth_mb_per_minute(self, name: str, start: float, end: float) -> float | None:
        """Least-squares slope of the tree's PSS between two instants, in MB per minute."""
        return _slope_per_minute([(t, v) for t, v in self.series.get(name, []) if start <= t <= end])

    def process_growth_mb_per_minute(
        self, name: str, start: float, end: float, *, uss: bool = False
    ) -> tuple[float, int, bool] | None:
        """The steepest slope (MB per minute) of anonymous memory (of USS with `uss`) among the tree's
        processes that lived through the whole window, that process's pid, and whether its growth is
        steady (`_steady_growth`)."""
        worst = None
        slack = max(2 * self.interval * self.detail_every, 0.02 * (end - start))  # a sample's own lateness
        every = self.process_uss_series if uss else self.process_series
        for (series_name, pid), series in every.items():
            points = [(t, v) for t, v in series if start <= t <= end]
            if series_name != name or not points or points[0][0] > start + slack or points[-1][0] < end - slack:
                continue
            slope = _slope_per_minute(points)
            if slope is not None and (worst is None or slope > worst[0]):
                worst = (slope, pid, _steady_growth(points))
        return worst


@dataclass(frozen=True)
class ProcessMemory:
    """One process's memory in MB."""

    rss: float
    pss: float
    uss: float
    anonymous: float


_ROLLUP_FIELDS = {"Rss:", "Pss:", "Private_Clean:", "Private_Dirty:", "Anonymous:"}
_HAS_ROLLUP = os.path.exists("/proc/self/smaps_rollup")  # Linux 4.14+


def process_memory(process: psutil.Process) -> ProcessMemory | None:
    """RSS, PSS, USS and anonymous memory of a process, from `/proc/PID/smaps_rollup` (one read,
    where psutil's USS reads every mapping); None when it is gone. Without the rollup, psutil's
    figures, with USS standing in for the anonymous memory."""
    if not _HAS_ROLLUP:
        return _psutil_memory(process)
    kb = {}
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as rollup:
            for line in rollup:
                key, _, rest = line.partition(" ")
                if key in _ROLLUP_FIELDS:
                    kb[key] = int(rest.split()[0])
    except OSError:  # the process ended (or is not ours to read)
        return None
    return ProcessMemory(
        rss=kb.get("Rss:", 0) / 1024,
        pss=kb.get("Pss:", 0) / 1024,
        uss=(kb.get("Private_Clean:", 0) + kb.get("Private_Dirty:", 0)) / 1024,
        anonymous=kb.get("Anonymous:", 0) / 1024,
    )


def _psutil_memory(process: psutil.Process) -> ProcessMemory | None:
    try:
        info = process.memory_full_info()
    except psutil.Error:
        return None
    uss = getattr(info, "uss", info.rss) / 2**20
    return ProcessMemory(info.rss / 2**20, getattr(info, "pss", info.rss) / 2**20, uss, uss)


STEADY_STEP_MB = 0.1  # PSS moves by page-sized amounts with no growth behind it


def _steady_growth(points: list[tuple[float, float]]) -> bool:
    """Whether the memory rose through the whole window: the median of each of its four quarters
    above the one before. A process that grows without bound does; one that allocated once (a
    connection pool or a client made by the first task of its kind) rose in one quarter only, which
    a least-squares slope alone cannot tell from a leak."""
    start, end = points[0][0], points[-1][0]
    quarters: list[list[float]] = [[], [], [], []]
    for t, v in points:
        quarters[min(3, int(4 * (t - start) / max(end - start, 1e-9)))].append(v)
    if any(not quarter for quarter in quarters):
        return False
    medians = [statistics.median(quarter) for quarter in quarters]
    return all(later - earlier > STEADY_STEP_MB for earlier, later in itertools.pairwise(medians))


def _slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 5:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 60


def peak_rss_of_command(argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, interval: float = 0.1):
    """Run a command to completion; returns (exit code, wall seconds, peak RSS MB of its tree)."""
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = 0.0
        try:
            for tick in itertools.count():
                if process.poll() is not None:
                    break
                if tick % 10 == 0:  # a scan of the process table costs ~10 ms; RSS is a counter
                    tree = process_trees({"command": (process.pid, True)}).get("command", [])
                with contextlib.suppress(psutil.Error):  # a process of the tree ended meanwhile
                    peak = max(peak, sum(p.memory_info().rss for p in tree) / 2**20)
                time.sleep(interval)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
    return process.returncode, time.monotonic() - started, peak
