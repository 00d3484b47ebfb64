"""The embedded profile keeps documents on disk (montydb on SQLite): they survive a process restart."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITE = """
import django; django.setup()
from brokage.documents import setup_all_collections
from brokage.events import build_envelope
from notifications.services import customer_event_apply
from audit.services import audit_log_record
setup_all_collections()
event = build_envelope("CustomerCreated", aggregate_type="Customer", aggregate_id=77, payload={
    "customer_id": 77, "username": "emre", "email": "emre@example.com", "phone": "", "role": "CUSTOMER",
    "tier_code": "STANDARD", "active": True})
customer_event_apply(event=event)
customer_event_apply(event=event)
audit_log_record(event=event)
audit_log_record(event=event)
"""

READ = """
import json
import django; django.setup()
from brokage.documents import context_database
from audit.partitions import partitions_list
notifications = context_database("notifications")
audit = context_database("audit")
def audited(query):
    return sum(audit[partition.name].count_documents(query) for partition in partitions_list(audit))
notification = notifications["notifications"].find_one({"customer_id": 77})
print(json.dumps({
    "notifications": notifications["notifications"].count_documents({}),
    "type": notification["type"],
    "email": notification["channels"]["email"]["status"],
    "contact": notifications["customer_contacts"].find_one({"_id": 77})["email"],
    "audit_logs": audited({"action": "CustomerCreated"}),
    "storage": (notifications.client.address if hasattr(notifications.client, "address") else None),
}))
"""


def run(code: str, var_dir: Path) -> str:
    env = {
        **os.environ,
        "BROKAGE_PROFILE": "embedded",
        "BROKAGE_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "brokage.settings",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_documents_written_by_one_process_are_read_by_the_next(tmp_path):
    run(WRITE, tmp_path)

    found = json.loads(run(READ, tmp_path).strip().splitlines()[-1])

    assert found["notifications"] == 1  # the replay made no second one
    assert found["type"] == "WELCOME"
    assert found["email"] == "SENT"
    assert found["contact"] == "emre@example.com"
    assert found["audit_logs"] == 1
    assert (tmp_path / "documents" / ".monty.storage").read_text().strip() == "sqlite"


REPLAYED_BATCH = """
import django; django.setup()
from brokage.documents import context_database, setup_all_collections
from brokage.events import build_envelope
from audit.services import audit_logs_record
setup_all_collections()
def created(customer_id):
    return build_envelope("CustomerCreated", aggregate_type="Customer", aggregate_id=customer_id, payload={
        "customer_id": customer_id, "username": f"c{customer_id}", "email": "", "phone": "", "role": "CUSTOMER",
        "tier_code": "STANDARD", "active": True})
seen = created(81)
audit_logs_record(events=[seen])
print(audit_logs_record(events=[created(80), seen, created(82)]))
from audit.partitions import partitions_list
audit = context_database("audit")
print(sum(audit[p.name].count_documents({"action": "CustomerCreated"}) for p in partitions_list(audit)))
"""


def test_a_batch_with_a_replayed_event_keeps_the_new_audit_entries_on_the_embedded_store(tmp_path):
    # montydb refuses a whole insert_many at the first duplicate; the new entries must still be written.
    written, stored = run(REPLAYED_BATCH, tmp_path).strip().splitlines()[-2:]

    assert (written, stored) == ("2", "3")
