"""Point-in-time recovery on the dev profile's PostgreSQL (docs/operations.md): a base backup, the WAL
the server archives by itself (scripts/services.sh sets archive_mode and archive_command), and a
scratch cluster on a free port recovered to a noted moment finds exactly the changes made before it."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from customers.services import customer_create

pytestmark = pytest.mark.integration


def pg_bin(name: str) -> str:
    major = connections["default"].pg_version // 10000
    candidate = Path(os.environ.get("BROKAGE_PG_BIN", f"/usr/lib/postgresql/{major}/bin")) / name
    return str(candidate) if candidate.is_file() else (shutil.which(name) or name)


def as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL's server tools refuse to run as root: run them as `postgres` then."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    completed = subprocess.run(prefix + args, capture_output=True, text=True, timeout=300, **kwargs)
    assert completed.returncode == 0, f"{args[0]}: {completed.stderr[-2000:]}"
    return completed


def server():
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"], autocommit=True
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="brokage-pitr-", dir="/tmp"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    yield folder
    pid = folder / "data" / "postmaster.pid"
    if pid.exists():
        as_postgres([pg_bin("pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"])
    shutil.rmtree(folder, ignore_errors=True)


def test_a_base_backup_and_the_archived_wal_recover_exactly_the_changes_before_a_noted_moment(scratch):
    with server() as connection:
        assert connection.execute("SHOW archive_mode").fetchone()[0] == "on", (
            "WAL archiving is off: scripts/services.sh up turns it on (restarting PostgreSQL once)"
        )
    archive = Path(os.environ["BROKAGE_WAL_ARCHIVE_DIR"])
    db = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(db["PASSWORD"])}
    base = scratch / "data"
    source = ["-h", db["HOST"], "-p", str(db["PORT"]), "-U", db["USER"], "--no-password"]
    as_postgres([pg_bin("pg_basebackup"), *source, "-D", str(base), "-X", "stream", "-c", "fast"], env=env)

    customer_create(username="pitr-before-1", password="s3cret-pass-123", email="pitr1@example.com")
    customer_create(username="pitr-before-2", password="s3cret-pass-123", email="pitr2@example.com")
    with server() as connection:
        noted = connection.execute("SELECT clock_timestamp()").fetchone()[0]
    time.sleep(0.2)
    customer_create(username="pitr-after", password="s3cret-pass-123", email="pitr3@example.com")
    with server() as connection:  # close the segment holding the changes, and wait for its archiving
        segment = connection.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + 60
        while not (archive / segment).exists():
            assert time.monotonic() < deadline, f"WAL segment {segment} never reached {archive}"
            time.sleep(0.2)

    port = free_port()
    run = scratch / "run"
    run.mkdir()
    if os.geteuid() == 0:
        shutil.chown(run, "postgres", "postgres")
    with (base / "postgresql.auto.conf").open("a") as conf:  # read last: overrides the copied settings
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{run}'\n"
            "archive_mode = off\n"  # never write into the live cluster's archive
            f'restore_command = \'cp "{archive}/%f" "%p"\'\n'
            f"recovery_target_time = '{noted.isoformat()}'\nrecovery_target_action = 'promote'\n"
        )
    (base / "recovery.signal").touch()
    if os.geteuid() == 0:
        shutil.chown(base / "postgresql.auto.conf", "postgres", "postgres")
        shutil.chown(base / "recovery.signal", "postgres", "postgres")
    as_postgres([pg_bin("pg_ctl"), "-D", str(base), "-l", str(scratch / "log"), "-w", "-t", "120", "start"])

    with psycopg.connect(
        host="127.0.0.1", port=port, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"], autocommit=True
    ) as restored:
        deadline = time.monotonic() + 60
        while restored.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            assert time.monotonic() < deadline, "the scratch cluster never finished its recovery"
            time.sleep(0.2)
        found = restored.execute("SELECT username FROM customers WHERE username LIKE 'pitr-%%' ORDER BY 1").fetchall()

    assert [username for (username,) in found] == ["pitr-before-1", "pitr-before-2"]
