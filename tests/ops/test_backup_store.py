"""Backups in an S3 bucket (tested against moto's S3-compatible server, started here on a free port)
and the restore drill, which restores the newest backup into scratch copies and leaves the live
databases alone."""

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command

from brokage.backup_drill import SCRATCH_SUFFIX, backup_drill
from brokage.backup_store import backup_rotate, latest_backup_name
from brokage.documents import context_database

CustomerTier = apps.get_model("customers", "CustomerTier")
BUCKET = "brokage-backups"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto's S3 server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
def s3(s3_server, monkeypatch):
    import boto3

    for variable, value in {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(variable, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client, prefix="") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def put_fake_backup(client, key_prefix: str, *, complete: bool = True) -> None:
    client.put_object(Bucket=BUCKET, Key=f"{key_prefix}/relational/x.sqlite3", Body=b"x")
    if complete:
        client.put_object(Bucket=BUCKET, Key=f"{key_prefix}/manifest.json", Body=b"{}")


@pytest.fixture
def gold():
    CustomerTier.objects.create(tier_code="GOLD", tier_name="Gold", priority=0, rate_limit=5000, monthly_fee="99.50")
    context_database("notifications")["notifications"].insert_one({"notification_id": "n-1", "title": "Hello"})


def test_a_backup_goes_to_the_bucket_manifest_and_all_and_comes_back_from_it(s3, gold):
    call_command("backup", dest=f"s3://{BUCKET}/nightly", progress=False)

    name = latest_backup_name(f"s3://{BUCKET}/nightly")
    stored = keys(s3, f"nightly/{name}/")
    assert f"nightly/{name}/manifest.json" in stored
    assert f"nightly/{name}/relational/brokage_customers.sqlite3" in stored
    assert f"nightly/{name}/documents/notifications/notifications.jsonl" in stored

    CustomerTier.objects.filter(tier_code="GOLD").delete()
    call_command("restore", source=f"s3://{BUCKET}/nightly/{name}", yes=True, progress=False)
    assert CustomerTier.objects.filter(tier_code="GOLD").exists()


def test_rotation_in_the_bucket_goes_by_age_and_ignores_an_upload_that_broke_off(s3):
    now = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
    for day in (1, 20, 25, 28):  # Feb
        put_fake_backup(s3, f"nightly/202402{day:02d}T020000Z")
    put_fake_backup(s3, "nightly/archive/20240115T020000Z")
    put_fake_backup(s3, "nightly/20240229T020000Z", complete=False)  # no manifest: not a backup

    result = backup_rotate(f"s3://{BUCKET}/nightly", now=now)

    assert result.kept == ["20240225T020000Z", "20240228T020000Z"]
    assert result.archived == ["20240201T020000Z", "20240220T020000Z"]
    assert result.deleted == ["20240115T020000Z"]  # past 30 days
    assert keys(s3, "nightly/archive/") == [
        f"nightly/archive/{name}/{file}"
        for name in ("20240201T020000Z", "20240220T020000Z")
        for file in ("manifest.json", "relational/x.sqlite3")
    ]
    assert keys(s3, "nightly/20240229T020000Z/") == ["nightly/20240229T020000Z/relational/x.sqlite3"]


def test_an_unreachable_bucket_is_a_clear_error(s3):
    with pytest.raises(CommandError, match="no-such-bucket"):
        call_command("backup", dest="s3://no-such-bucket/x", progress=False)


def test_the_drill_restores_the_newest_backup_into_scratch_copies_and_leaves_the_live_data_alone(tmp_path, gold):
    call_command("backup", dest=tmp_path, progress=False)
    CustomerTier.objects.filter(tier_code="GOLD").delete()  # a change after the backup: the drill must not undo it

    result = backup_drill(tmp_path, keep=True)
    try:
        assert result.restored["brokage_customers"] > 0
        assert result.restored["notifications"] == 1
        scratch_documents = context_database("notifications").client[f"test_notifications{SCRATCH_SUFFIX}"]
        assert scratch_documents["notifications"].find_one({"notification_id": "n-1"})["title"] == "Hello"
        customers_url = result.scratch["DATABASE_URL_CUSTOMERS"]
        import sqlite3

        with sqlite3.connect(customers_url.removeprefix("sqlite:///")) as scratch:
            assert scratch.execute("SELECT count(*) FROM customer_tiers WHERE tier_code = 'GOLD'").fetchone() == (1,)
        assert not CustomerTier.objects.filter(tier_code="GOLD").exists()  # live data untouched
        assert result.reconcile == "ok"
    finally:
        context_database("notifications").client.drop_database(f"test_notifications{SCRATCH_SUFFIX}")


def test_the_drill_command_reports_what_came_back(tmp_path, gold, capsys):
    call_command("backup", dest=tmp_path, progress=False)
    broken_off = tmp_path / (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")
    broken_off.mkdir()  # newer, but without a manifest: not a backup

    from io import StringIO

    out = StringIO()
    call_command("restore_drill", source=str(tmp_path), stdout=out)

    assert "restore drill of" in out.getvalue()
    assert "notifications" in out.getvalue()
    assert (
        context_database("notifications").client.list_database_names().count(f"test_notifications{SCRATCH_SUFFIX}") == 0
    )  # dropped afterwards


def test_the_drill_refuses_when_there_is_no_backup(tmp_path):
    with pytest.raises(CommandError, match="no complete backup"):
        call_command("restore_drill", source=str(tmp_path))


@pytest.fixture(autouse=True)
def _no_aws_profile(monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
