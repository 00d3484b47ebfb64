"""Backup and restore on the real services: pg_dump / pg_restore against PostgreSQL 15, the
document export against FerretDB. The restore is proven by wiping the data and finding it back."""

import json
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from brokage.documents import context_database
from customers.services import customer_create

pytestmark = pytest.mark.integration

Customer = apps.get_model("customers", "Customer")
CustomerTier = apps.get_model("customers", "CustomerTier")
REPLICAS = {context: apps.get_model(context, "CustomerReplica") for context in ("orders", "assets", "processor")}
# Recent (the audit context sweeps entries older than 365 days) and whole milliseconds (BSON dates).
CREATED = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def data():
    customer = customer_create(username="backup-alice", password="s3cret-pass", email="backup-alice@example.com")
    CustomerTier.objects.create(tier_code="GOLD", tier_name="Gold", priority=0, rate_limit=5000, monthly_fee="99.50")
    for replica in REPLICAS.values():
        replica.objects.update_or_create(customer_id=customer.pk, defaults={"role": "CUSTOMER", "tier_code": "GOLD"})
    notifications = context_database("notifications")["notifications"]
    notifications.create_index([("title", 1), ("customer_id", 1)], name="backup_probe")
    notifications.insert_one(
        {"notification_id": "n-1", "customer_id": customer.pk, "title": "Order matched", "created_at": CREATED}
    )
    context_database("audit")["audit_logs"].insert_one(
        # FerretDB has no Decimal128 (it drops the connection); decimals travel as strings anyway (§3).
        {"action": "DEPOSIT", "entity_id": str(customer.pk), "new_value": {"amount": "1500.25"}, "timestamp": CREATED}
    )
    return customer


def wipe(customer):
    Customer.objects.filter(pk=customer.pk).delete()
    CustomerTier.objects.filter(tier_code="GOLD").delete()
    for replica in REPLICAS.values():
        replica.objects.all().delete()
    context_database("notifications")["notifications"].drop()
    context_database("audit")["audit_logs"].delete_many({})


def backup_into(folder):
    call_command("backup", dest=folder, progress=False)
    (backup,) = [path for path in folder.iterdir() if path.name != "archive"]
    return backup


def test_backup_wipe_restore_finds_the_same_data(tmp_path, data):
    backup = backup_into(tmp_path)

    manifest = json.loads((backup / "manifest.json").read_text())
    by_name = {entry["logical_name"]: entry for entry in manifest["databases"]}
    assert set(by_name) == {
        "brokage_customers",
        "brokage_orders",
        "brokage_assets",
        "brokage_processor",
        "notifications",
        "audit_logs",
    }
    assert by_name["brokage_orders"]["kind"] == "postgresql"
    assert by_name["brokage_orders"]["database"].startswith("test_brokage_orders")  # what pytest-django created
    assert by_name["brokage_orders"]["server_version"].startswith("15")
    assert by_name["audit_logs"]["database"] == "test_audit_logs"
    assert "15" in manifest["versions"]["pg_dump"]
    assert manifest["versions"]["document_server"]
    assert (backup / "relational" / "brokage_customers.dump").read_bytes()[:5] == b"PGDMP"  # custom format

    wipe(data)
    assert not Customer.objects.filter(username="backup-alice").exists()

    call_command("restore", source=backup, yes=True, progress=False)

    restored = Customer.objects.get(username="backup-alice")
    assert restored.pk == data.pk
    assert restored.check_password("s3cret-pass")
    assert CustomerTier.objects.get(tier_code="GOLD").rate_limit == 5000
    for replica in REPLICAS.values():
        assert replica.objects.get(customer_id=data.pk).tier_code == "GOLD"
    notifications = context_database("notifications")["notifications"]
    notification = notifications.find_one({"notification_id": "n-1"})
    assert notification["title"] == "Order matched"
    assert notification["created_at"] == CREATED
    assert notifications.index_information()["backup_probe"]["key"] == [("title", 1), ("customer_id", 1)]
    audit = context_database("audit")["audit_logs"].find_one({"action": "DEPOSIT"})
    assert audit["new_value"]["amount"] == "1500.25"
    assert audit["timestamp"] == CREATED
    # The sequences came back too: a new customer does not collide with the restored one.
    later = customer_create(username="backup-bob", password="s3cret-pass", email="backup-bob@example.com")
    assert later.pk > restored.pk


def test_a_damaged_dump_is_refused_before_any_database_is_touched(tmp_path, data):
    backup = backup_into(tmp_path)
    dump = backup / "relational" / "brokage_orders.dump"
    content = bytearray(dump.read_bytes())
    content[len(content) // 2] ^= 0xFF
    dump.write_bytes(bytes(content))
    wipe(data)

    with pytest.raises(CommandError, match=r"damaged.*relational/brokage_orders\.dump"):
        call_command("restore", source=backup, yes=True, progress=False)

    assert not Customer.objects.filter(username="backup-alice").exists()
    assert context_database("notifications")["notifications"].count_documents({}) == 0


def test_the_restore_drill_restores_into_scratch_databases_beside_the_live_ones(tmp_path, data):
    from django.db import connection

    from brokage.backup_drill import backup_drill

    call_command("backup", dest=tmp_path, progress=False)
    Customer.objects.filter(username="backup-alice").delete()  # after the backup: the drill must not bring it back

    result = backup_drill(tmp_path)

    assert result.restored["brokage_customers"] > 0
    assert result.restored["notifications"] >= 1
    assert result.scratch["DATABASE_URL_CUSTOMERS"].endswith("/test_brokage_customers_drill")
    assert result.reconcile == "ok"
    assert not Customer.objects.filter(username="backup-alice").exists()  # the live database untouched
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%%_drill'")
        assert cursor.fetchone() == (0,)  # the scratch copies are gone
    assert "test_notifications_drill" not in context_database("notifications").client.list_database_names()
