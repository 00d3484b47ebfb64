"""The default profile holds concurrent clients: `make run`'s setup (embedded: SQLite files, montydb,
the in-process bus, eager Celery) in a real server process, and 50 orders sent at once over 5
customers (`bench.burst`, the tool an operator runs against `make run`).

Some customers can pay for all their orders, the others for about half; every request must be
answered 201 (within 2 s on a quiet host), exactly the orders the balances pay for must be confirmed (the rest
REJECTED for INSUFFICIENT_BALANCE), and each balance's reserved TRY must be the sum of its open orders.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.burst import run_burst

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


@dataclass
class EmbeddedServer:
    url: str
    pid: int
    env: dict  # what `manage.py` needs to work on the same data (`_manage(..., env=server.env)`)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manage(*args: str, env: dict, timeout: float = 300) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-3000:]}"


@pytest.fixture
def embedded_server(tmp_path):
    """`make run` in a temporary var directory on a free port: migrate_all, seed_demo, then the server."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL_", "BROKAGE_"))},
        "BROKAGE_PROFILE": "embedded",
        "BROKAGE_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "brokage.settings",
        "LOG_LEVEL": "WARNING",
    }
    _manage("migrate_all", env=env)
    _manage("seed_demo", env=env)
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(url, server)
        yield EmbeddedServer(url=url, pid=server.pid, env=env)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _wait_until_live(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited while starting"
        try:
            with urllib.request.urlopen(f"{url}/health/live", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within {STARTUP_SECONDS}s")


def test_fifty_concurrent_orders_on_the_embedded_profile_are_answered_and_booked_right(embedded_server):
    report = asyncio.run(
        run_burst(embedded_server.url, orders=50, customers=5, wait=10, keep=True, server_pid=embedded_server.pid)
    )

    assert report.statuses == {"201": 50}, report.as_dict()
    # The target is 2 s (docs/concurrency.md: 1.9-2.1 s for the slowest answer on a quiet 2-core host,
    # where every answer waits for its saga in one GIL-bound process); the test leaves room for a
    # shared CI host and catches a lock wait, which costs tens of seconds.
    assert report.max_latency_ms < 4000, report.as_dict()
    assert any(customer.orders_allowed < customer.orders_sent for customer in report.customers)
    for customer in report.customers:
        assert customer.confirmed == customer.orders_allowed, customer
        assert customer.rejected_insufficient == customer.orders_sent - customer.orders_allowed, customer
        assert customer.other_statuses == {}, customer
        assert customer.reserved_adds_up, customer
    # The books across the contexts: the end-of-day reconciliation finds nothing (exit status 0).
    _manage("reconcile", "--settle-seconds", "0", env=embedded_server.env)
