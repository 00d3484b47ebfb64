"""A tiering run killed (SIGKILL) in the middle of its moves, on the embedded profile's montydb, where
a move is a copy: the next run finishes it, and every entry is then in its tier exactly once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAYS = 3
PER_DAY = 1500

SEED = f"""
import django, json
from datetime import UTC, datetime, timedelta
django.setup()
from audit.services import audit_logs_record
from tests.notifications.envelopes import order_event
now = datetime.now(UTC)
ids = []
for day in range({DAYS}):
    events = []
    for n in range({PER_DAY}):
        event = order_event("OrderMatched", n, old_status="ORDER_CONFIRMED", new_status="MATCHED")
        event["occurred_at"] = (now - timedelta(days=40 + day, seconds=n)).isoformat()
        events.append(event)
    audit_logs_record(events=events)
    ids += [event["event_id"] for event in events]
print(json.dumps(ids))
"""

READ = """
import django, json
django.setup()
from audit.documents import audit_database
from audit.partitions import partitions_list
database = audit_database()
found = {p.name: [e["_id"] for e in database[p.name].find({}, {"_id": 1})] for p in partitions_list(database)}
print(json.dumps(found))
"""


def run(environment, *args, **kwargs):
    completed = subprocess.run(args, cwd=ROOT, env=environment, capture_output=True, text=True, **kwargs)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_a_killed_tiering_run_is_finished_by_the_next_one(tmp_path):
    environment = {**os.environ, "BROKAGE_PROFILE": "embedded", "BROKAGE_VAR_DIR": str(tmp_path)}
    seeded = json.loads(run(environment, sys.executable, "-c", SEED).stdout)
    partitions = tmp_path / "documents" / "audit_logs"

    tiering = subprocess.Popen(
        [sys.executable, "manage.py", "audit_tiering"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and tiering.poll() is None:
        # Killed once the first day has reached COLD while others still wait in HOT.
        if list(partitions.glob("audit_logs_cold_*")) and len(list(partitions.glob("audit_logs_2*"))) >= 2:
            tiering.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert tiering.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed halfway"
    assert list(partitions.glob("audit_logs_2*"))  # the run was indeed cut short: days still in HOT

    run(environment, sys.executable, "manage.py", "audit_tiering")

    after = json.loads(run(environment, sys.executable, "-c", READ).stdout)
    assert all(name.startswith("audit_logs_cold_") for name in after)
    found = [entry for entries in after.values() for entry in entries]
    assert sorted(found) == sorted(seeded)  # none lost, none twice
