"""py-spy over every process of the system while the placement load runs (`--profile`).

Each process (with its children: the web server's workers, Celery's pool) is sampled by its own
`py-spy record --format raw`; `finish` folds the stacks into the functions that use the most
CPU, by self time (the frame on top of the stack) and by total time (anywhere on the stack).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

RATE = 50  # samples per second: enough for the top functions, light on two cores


def start(
    watched: dict[str, int], *, seconds: int, out: Path, gil: bool = False
) -> list[tuple[str, subprocess.Popen, Path]]:
    """py-spy each watched process tree for `seconds`; `gil`: only the samples of a thread holding the
    GIL (its Python CPU, without the time spent waiting for a database or the broker)."""
    py_spy = shutil.which("py-spy") or str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy")
    started = []
    for name, pid in watched.items():
        if name.startswith("service:") or name.startswith("bench"):
            continue
        path = out / f"profile-{name}.txt"
        argv = [py_spy, "record", "--pid", str(pid), "--rate", str(RATE), "--duration", str(seconds)]
        argv += ["--format", "raw", "--output", str(path), "--nonblocking", "--subprocesses"]
        if gil:
            argv.append("--gil")
        log = (out / f"profile-{name}.log").open("wb")
        started.append((name, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), path))
    return started


def _frames(stack: str) -> list[str]:
    frames = []
    for frame in stack.split(";"):
        # "function (path/to/file.py:123)": keep function and file, drop the line number
        head, _, rest = frame.partition(" (")
        frames.append(f"{head} ({rest.rsplit(':', 1)[0]})" if rest else head)
    return frames


def summarize(path: Path, top: int = 15) -> dict:
    self_time: Counter = Counter()
    total_time: Counter = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = _frames(stack)
        if frames:
            self_time[frames[-1]] += n
        for frame in set(frames):
            total_time[frame] += n

    def share(counter: Counter) -> list[list]:
        return [[frame, round(100 * n / samples, 1)] for frame, n in counter.most_common(top)] if samples else []

    return {"samples": samples, "self_pct": share(self_time), "total_pct": share(total_time)}


def finish(started, *, out: Path) -> dict:
    summary = {}
    for name, process, path in started:
        process.wait(60)
        if path.exists():
            summary[name] = summarize(path)
    lines = []
    for name, data in summary.items():
        lines.append(f"== {name}: {data['samples']} samples")
        lines += [f"  self {pct:5.1f}%  {frame}" for frame, pct in data["self_pct"]]
        lines += [f"  total {pct:5.1f}%  {frame}" for frame, pct in data["total_pct"]]
    (out / "profile-summary.txt").write_text("\n".join(lines) + "\n")
    return summary
