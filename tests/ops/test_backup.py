"""`manage.py backup` / `restore` on the fast tier: SQLite per alias, mongomock documents.

What an operator relies on: a backup holds every database with checksums, a restore brings back
exactly what was backed up, a damaged backup is refused before anything changes, and old backups
rotate into the archive instead of filling the disk.
"""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from bson import Decimal128
from django.apps import apps
from django.core.management import CommandError, call_command

from brokage.backup_store import backup_rotate
from brokage.documents import context_database

CustomerTier = apps.get_model("customers", "CustomerTier")
REPLICAS = {context: apps.get_model(context, "CustomerReplica") for context in ("orders", "assets", "processor")}
# Recent (the audit context sweeps entries older than 365 days) and whole milliseconds (BSON dates).
CREATED = datetime.now(UTC).replace(microsecond=0)
ROOT = Path(__file__).resolve().parents[2]


def backup_into(folder):
    call_command("backup", dest=folder, progress=False)
    (backup,) = [path for path in folder.iterdir() if path.name != "archive"]
    return backup


def restore_from(backup):
    call_command("restore", source=backup, yes=True, progress=False)


@pytest.fixture
def data():
    """A row in every relational database and documents (with an index) in both document databases."""
    CustomerTier.objects.create(tier_code="GOLD", tier_name="Gold", priority=0, rate_limit=5000, monthly_fee="99.50")
    for customer_id, replica in enumerate(REPLICAS.values(), start=41):
        replica.objects.create(customer_id=customer_id, role="CUSTOMER", tier_code="GOLD")
    notifications = context_database("notifications")["notifications"]
    notifications.create_index([("title", 1), ("customer_id", 1)], name="backup_probe")
    notifications.insert_one(
        {"notification_id": "n-1", "customer_id": 41, "title": "Order matched", "created_at": CREATED}
    )
    context_database("audit")["audit_logs"].insert_one(
        {"action": "DEPOSIT", "entity_id": "41", "new_value": {"amount": Decimal128("1500.25")}, "timestamp": CREATED}
    )


def wipe():
    CustomerTier.objects.filter(tier_code="GOLD").delete()
    for replica in REPLICAS.values():
        replica.objects.all().delete()
    context_database("notifications")["notifications"].drop()
    context_database("audit")["audit_logs"].delete_many({})


def test_a_backup_holds_every_database_with_checksums(tmp_path, data):
    backup = backup_into(tmp_path)

    manifest = json.loads((backup / "manifest.json").read_text())
    assert {entry["logical_name"] for entry in manifest["databases"]} == {
        "brokage_customers",
        "brokage_orders",
        "brokage_assets",
        "brokage_processor",
        "notifications",
        "audit_logs",
    }
    notifications = next(e for e in manifest["databases"] if e["logical_name"] == "notifications")
    assert notifications["database"] == "test_notifications"  # the actual name differs under test
    assert {"name": "notifications", "file": "documents/notifications/notifications.jsonl", "documents": 1} in (
        notifications["collections"]
    )
    for entry in manifest["files"]:
        assert (backup / entry["path"]).stat().st_size == entry["size"]
        assert len(entry["sha256"]) == 64
    assert (backup / "relational" / "brokage_orders.sqlite3").is_file()
    assert manifest["versions"]["pymongo"]
    assert manifest["versions"]["document_server"].startswith("mongomock")


def test_restore_brings_back_what_was_backed_up(tmp_path, data):
    backup = backup_into(tmp_path)
    wipe()
    CustomerTier.objects.create(tier_code="LATER", tier_name="Created after the backup", priority=9, rate_limit=1)

    restore_from(backup)

    gold = CustomerTier.objects.get(tier_code="GOLD")
    assert (gold.rate_limit, gold.monthly_fee) == (5000, Decimal("99.50"))
    assert not CustomerTier.objects.filter(tier_code="LATER").exists()
    for customer_id, replica in enumerate(REPLICAS.values(), start=41):
        assert replica.objects.get(customer_id=customer_id).tier_code == "GOLD"
    notifications = context_database("notifications")["notifications"]
    notification = notifications.find_one({"notification_id": "n-1"})
    assert notification["title"] == "Order matched"
    assert notification["created_at"] == CREATED
    assert notifications.index_information()["backup_probe"]["key"] == [("title", 1), ("customer_id", 1)]
    audit = context_database("audit")["audit_logs"].find_one({"action": "DEPOSIT"})
    assert audit["new_value"]["amount"] == Decimal128("1500.25")


def test_a_damaged_backup_is_refused_and_nothing_is_touched(tmp_path, data):
    backup = backup_into(tmp_path)
    dump = backup / "relational" / "brokage_assets.sqlite3"
    content = bytearray(dump.read_bytes())
    content[len(content) // 2] ^= 0xFF
    dump.write_bytes(bytes(content))
    wipe()

    with pytest.raises(CommandError, match=r"damaged.*relational/brokage_assets\.sqlite3"):
        restore_from(backup)

    assert not CustomerTier.objects.filter(tier_code="GOLD").exists()
    assert not REPLICAS["orders"].objects.exists()


def test_a_backup_with_a_missing_file_is_refused(tmp_path, data):
    backup = backup_into(tmp_path)
    (backup / "documents" / "audit_logs" / "audit_logs.jsonl").unlink()

    with pytest.raises(CommandError, match=r"documents/audit_logs/audit_logs\.jsonl is missing"):
        restore_from(backup)


def test_restore_without_yes_and_without_a_terminal_changes_nothing(tmp_path, data):
    backup = backup_into(tmp_path)
    wipe()

    with pytest.raises(CommandError, match="--yes"):
        call_command("restore", source=backup, progress=False)

    assert not CustomerTier.objects.filter(tier_code="GOLD").exists()


def fake_backups(folder, days, month=1):
    for day in days:
        path = folder / f"2024{month:02d}{day:02d}T020000Z"
        path.mkdir(parents=True)
        (path / "manifest.json").write_text("{}")


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in {"archive", "notes"}) if folder.is_dir() else []


JAN_11 = datetime(2024, 1, 11, 1, 0, tzinfo=UTC)


def test_rotation_archives_backups_older_than_seven_days(tmp_path):
    fake_backups(tmp_path, range(1, 11))  # ten nightly backups, Jan 1..10
    (tmp_path / "notes").mkdir()  # not a backup: never moved

    result = backup_rotate(tmp_path, now=JAN_11)

    assert names(tmp_path) == [f"202401{day:02d}T020000Z" for day in range(4, 11)]  # Jan 4 02:00: 6 days 23 hours old
    assert names(tmp_path / "archive") == ["20240101T020000Z", "20240102T020000Z", "20240103T020000Z"]
    assert result.deleted == []
    assert (tmp_path / "notes").is_dir()


def test_the_archive_keeps_thirty_days_and_its_days_are_counted_from_the_backup(tmp_path):
    fake_backups(tmp_path / "archive", range(1, 31))
    fake_backups(tmp_path, range(1, 8), month=2)

    result = backup_rotate(tmp_path, now=datetime(2024, 2, 8, 1, 0, tzinfo=UTC))

    assert names(tmp_path / "archive")[0] == "20240109T020000Z"  # 29 days 23 hours before
    assert result.deleted == [f"202401{day:02d}T020000Z" for day in range(1, 9)]
    assert names(tmp_path) == [f"202402{day:02d}T020000Z" for day in range(1, 8)]


def test_twice_the_backups_in_a_day_are_kept_as_long_and_the_newest_backup_always_stays(tmp_path):
    fake_backups(tmp_path, range(1, 3))
    (tmp_path / "20240102T020000Z-1").mkdir()

    result = backup_rotate(tmp_path, keep_days=7, keep_archive_days=30, now=datetime(2024, 6, 1, tzinfo=UTC))

    assert names(tmp_path) == ["20240102T020000Z-1"]  # months old, but the only one left to restore
    assert sorted(result.deleted) == ["20240101T020000Z", "20240102T020000Z"]


def test_backup_command_rotates_by_the_days_given_after_taking_a_backup(tmp_path, data):
    fake_backups(tmp_path, range(1, 8))

    call_command("backup", dest=tmp_path, progress=False, keep_days=7, keep_archive_days=3650)

    local = names(tmp_path)
    assert len(local) == 1 and local[0].startswith(datetime.now(UTC).strftime("%Y%m%d"))
    assert names(tmp_path / "archive") == [f"202401{day:02d}T020000Z" for day in range(1, 8)]


def test_backup_command_refuses_an_archive_shorter_than_the_local_days(tmp_path):
    with pytest.raises(CommandError, match="--keep-archive-days"):
        call_command("backup", dest=tmp_path, keep_days=7, keep_archive_days=3)


def manage(var_dir, *args, check=True):
    """`manage.py` in its own process on the embedded profile: SQLite files and montydb under var_dir."""
    env = {**os.environ, "BROKAGE_PROFILE": "embedded", "BROKAGE_VAR_DIR": str(var_dir)}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


SHOW = (
    "from django.apps import apps; from brokage.documents import context_database; "
    "print(list(apps.get_model('customers', 'CustomerTier').objects.filter(tier_code='GOLD')"
    ".values_list('tier_name', flat=True)), "
    "[d['title'] for d in context_database('notifications')['notifications'].find()])"
)


def test_the_commands_on_the_embedded_profile_round_trip_and_refuse_damage(tmp_path):
    var, backups = tmp_path / "var", tmp_path / "backups"
    manage(var, "migrate_all")
    manage(
        var,
        "shell",
        "-c",
        "from django.apps import apps; from brokage.documents import context_database; "
        "apps.get_model('customers', 'CustomerTier').objects.create(tier_code='GOLD', tier_name='Gold', "
        "priority=0, rate_limit=5000, monthly_fee='99.50'); "
        "context_database('notifications')['notifications'].insert_one({'title': 'Order matched'})",
    )
    assert "backup complete" in manage(var, "backup", "--dest", str(backups)).stdout
    (backup,) = backups.iterdir()
    manage(
        var,
        "shell",
        "-c",
        "from django.apps import apps; from brokage.documents import context_database; "
        "apps.get_model('customers', 'CustomerTier').objects.filter(tier_code='GOLD').delete(); "
        "context_database('notifications')['notifications'].delete_many({})",
    )
    assert manage(var, "shell", "-c", SHOW).stdout.strip().endswith("[] []")

    manage(var, "restore", "--from", str(backup), "--yes")

    assert manage(var, "shell", "-c", SHOW).stdout.strip().endswith("['Gold'] ['Order matched']")

    dump = backup / "relational" / "brokage_customers.sqlite3"
    content = bytearray(dump.read_bytes())
    content[100] ^= 0xFF
    dump.write_bytes(bytes(content))
    refused = manage(var, "restore", "--from", str(backup), "--yes", check=False)
    assert refused.returncode != 0
    assert "relational/brokage_customers.sqlite3 is damaged" in refused.stderr
