"""The relay workers of OUTBOX_RELAY_MODE=celery hear this outbox's commits (PostgreSQL NOTIFY; brokage/relay_notify.py)."""

from django.db import migrations

from brokage.relay_notify import OutboxNotifyTrigger


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_outbox_failed_index"),
    ]

    operations = [
        OutboxNotifyTrigger(context="customers"),
    ]
