"""`make run PROFILE=dev`'s process manager (scripts/supervise.py, supervisor): a process that dies
comes back by itself while the others keep running, and a SIGTERM stops every process it started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
FORKS_A_CHILD = 'import subprocess, time; subprocess.Popen(["sleep", "300"]); time.sleep(300)'


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def supervised(tmp_path):
    procfile = tmp_path / "Procfile"
    # `sleeper` forks a child of its own, as a web server's master or Celery's pool would; `steady`
    # starts with an assignment, as a Procfile line may (`exec STEADY=1` would find no such program).
    procfile.write_text(f"# a comment\nsleeper: {sys.executable} -c '{FORKS_A_CHILD}'\nsteady: STEADY=1 sleep 300\n")
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "supervise.py"),
            "--procfile",
            str(procfile),
            "--run-dir",
            str(run_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield process, run_dir
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def pids(run_dir: Path) -> dict[str, int]:
    ctl = Path(sys.executable).parent / "supervisorctl"
    out = subprocess.run(
        [str(ctl), "-c", str(run_dir / "supervisord.conf"), "status"], capture_output=True, text=True
    ).stdout
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "RUNNING":
            found[parts[0]] = int(parts[3].rstrip(","))
    return found


def test_a_killed_process_comes_back_and_sigterm_stops_everything(supervised):
    supervisor, run_dir = supervised
    first = wait_for(lambda: (found := pids(run_dir)) and {"sleeper", "steady"} <= set(found) and found)
    tree = [psutil.Process(first[name]) for name in ("sleeper", "steady")]
    tree += [child for process in list(tree) for child in process.children(recursive=True)]
    assert len(tree) >= 3  # the sleeper's own child too

    os.kill(first["sleeper"], signal.SIGKILL)
    again = wait_for(lambda: (found := pids(run_dir)).get("sleeper", first["sleeper"]) != first["sleeper"] and found)
    assert again["steady"] == first["steady"]  # the others kept running

    everything = [*tree, psutil.Process(again["sleeper"])]
    everything += psutil.Process(again["sleeper"]).children(recursive=True)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    _gone, alive = psutil.wait_procs(everything, timeout=5)
    assert alive == []
