"""The system under test: the dev profile's processes under supervisor, and the services they use.

`Stack` starts `Procfile.dev` through `scripts/supervise.py` (the process manager of
`make run PROFILE=dev`) on free ports and a run directory of its own, so it restarts a killed
process by itself, and stops it all at the end. The services (PostgreSQL, Redis, Kafka, FerretDB)
are those of `scripts/services.sh`; a killed one is started again with it, as systemd would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "faults"
SERVICES = ROOT / "scripts" / "services.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def services_env() -> dict[str, str]:
    """The environment the dev profile reads (`scripts/services.sh env`)."""
    out = subprocess.run(["bash", str(SERVICES), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value.strip("'\"")
    return env


def service_ports(env: dict[str, str]) -> dict[str, int]:
    def port(variable: str) -> int:
        value = env[variable]
        return urlsplit(value if "//" in value else f"//{value}").port

    return {
        "postgres": port("DATABASE_URL_ORDERS"),
        "redis": port("REDIS_URL"),
        "kafka": port("KAFKA_BOOTSTRAP_SERVERS"),
        "ferretdb": port("MONGODB_URL"),
    }


def listening_pid(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.run_dir = OUT / "run"
        self.env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "EMAIL_PORT": str(free_port()),
            "BROKAGE_RUN_STATE_DIR": str(self.run_dir / "state"),
            "RATE_LIMIT_ENABLED": "0",  # the suite is one client placing orders for many customers
            "PYTHONUNBUFFERED": "1",
        }
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.supervisor: subprocess.Popen | None = None
        self.log_path = OUT / "stack.log"

    def manage(self, *argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.supervisor = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "supervise.py"), "--run-dir", str(self.run_dir)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.supervisor is None or self.supervisor.poll() is not None:
            return
        self.supervisor.send_signal(signal.SIGTERM)
        try:
            self.supervisor.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.supervisor.pid, signal.SIGKILL)

    def processes(self) -> dict[str, tuple[str, int | None]]:
        """{name: (state, pid)} as supervisor reports them."""
        ctl = Path(sys.executable).parent / "supervisorctl"
        out = subprocess.run(
            [str(ctl), "-c", str(self.run_dir / "supervisord.conf"), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        found = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                pid = int(parts[3].rstrip(",")) if len(parts) >= 4 and parts[2] == "pid" else None
                found[parts[0]] = (parts[1], pid)
        return found

    def all_running(self) -> bool:
        states = self.processes()
        return bool(states) and all(state == "RUNNING" for state, _pid in states.values())

    def kill_process(self, name: str) -> int:
        state, pid = self.processes().get(name, ("", None))
        if state != "RUNNING" or pid is None:
            raise RuntimeError(f"{name} is not running ({state or 'unknown'})")
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_service(self, name: str) -> int:
        port = service_ports(self.env)[name]
        pid = listening_pid(port)
        if pid is None:
            raise RuntimeError(f"nothing listens on {name}'s port {port}")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        return pid

    def start_service(self, name: str) -> None:
        """What systemd would do for a service that died: start it again (until it comes up)."""
        deadline = time.monotonic() + 180
        while True:
            done = subprocess.run(
                ["bash", str(SERVICES), "start", name], env=self.env, capture_output=True, text=True, timeout=300
            )
            if done.returncode == 0 or time.monotonic() > deadline:
                if done.returncode != 0:
                    raise RuntimeError(f"{name} did not start again: {done.stderr[-2000:]}")
                return
            time.sleep(2)
