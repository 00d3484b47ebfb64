"""audit_tiering: HOT / WARM / COLD by age, deleted after 365 days."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from audit.documents import audit_database
from audit.services import audit_tiering
from brokage.documents import context_database

# "old" is within the real TTL, so only tiering relative to a later --as-of deletes it.
AGES = {"fresh": 1, "week": 10, "month": 100, "old": 300}


def _seed(now):
    logs = audit_database()["audit_logs"]
    for name, days in AGES.items():
        logs.insert_one({"_id": name, "timestamp": now - timedelta(days=days), "action": "Test"})
    return logs


def _tiers(logs) -> dict:
    return {entry["_id"]: entry.get("tier") for entry in logs.find({})}


def test_entries_get_their_tier_and_the_oldest_are_deleted():
    now = timezone.now()
    logs = _seed(now)

    assert audit_tiering(now=now) == {"HOT": 1, "WARM": 1, "COLD": 2, "deleted": 0}
    assert _tiers(logs) == {"fresh": "HOT", "week": "WARM", "month": "COLD", "old": "COLD"}

    later = now + timedelta(days=70)
    assert audit_tiering(now=later) == {"HOT": 0, "WARM": 0, "COLD": 3, "deleted": 1}
    assert _tiers(logs) == {"fresh": "COLD", "week": "COLD", "month": "COLD"}


def test_command_as_of_moves_entries_down_a_tier():
    now = timezone.now()
    logs = _seed(now)
    as_of = (now + timedelta(days=10)).isoformat()

    out = StringIO()
    call_command("audit_tiering", "--as-of", as_of, stdout=out)

    assert _tiers(logs) == {"fresh": "WARM", "week": "WARM", "month": "COLD", "old": "COLD"}
    assert "deleted 0" in out.getvalue()


def test_dry_run_changes_nothing():
    now = timezone.now()
    logs = _seed(now)

    out = StringIO()
    call_command("audit_tiering", "--dry-run", stdout=out)

    assert _tiers(logs) == dict.fromkeys(AGES)
    assert "HOT=1, WARM=1, COLD=2; would delete 0" in out.getvalue()
    assert context_database("audit")["audit_logs"].count_documents({}) == 4


def test_the_audit_api_reads_cold_entries_only_on_request():
    from django.utils import timezone
    from rest_framework.test import APIClient

    from audit.documents import AUDIT_LOGS, audit_database
    from customers.services import customer_create

    admin = customer_create(username="tier-admin", password="s3cret-pass-123", email="ta@example.com", role="ADMIN")
    logs = audit_database()[AUDIT_LOGS]
    logs.delete_many({})
    now = timezone.now()
    logs.insert_many(
        [
            {"timestamp": now, "action": "Hot", "tier": "HOT"},
            {"timestamp": now, "action": "Cold", "tier": "COLD"},
        ]
    )
    client = APIClient()
    client.force_authenticate(admin)
    default = {e["action"] for e in client.get("/api/audit-logs").json()["results"]}
    with_cold = {e["action"] for e in client.get("/api/audit-logs?include_cold=true").json()["results"]}
    assert default == {"Hot"}
    assert with_cold == {"Hot", "Cold"}
