"""The ledger: `asset_movements`, and an opening movement for every balance that exists already, so
an existing database reconciles (its size and usable_size are the sums of its movements).

Each balance opens with a DEPOSIT of its size and, if part of it is reserved, a RESERVE of that
part, both with the reference "ledger-opening"."""

from decimal import Decimal

import brokage.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


OPENING_REFERENCE = "ledger-opening"
BATCH = 2000  # movements per INSERT: 12 columns each, well inside PostgreSQL's 65,535 parameters


def opening_movements(apps, schema_editor):
    alias = schema_editor.connection.alias
    asset_model = apps.get_model("assets", "Asset")
    movement_model = apps.get_model("assets", "AssetMovement")
    batch = []
    for asset in asset_model.objects.using(alias).order_by("id").iterator(chunk_size=BATCH):
        common = {"asset_id": asset.id, "customer_id": asset.customer_id, "asset_name": asset.asset_name}
        common["reference"] = OPENING_REFERENCE
        batch.append(
            movement_model(
                kind="DEPOSIT",
                size_delta=asset.size,
                usable_delta=asset.size,
                size_after=asset.size,
                usable_after=asset.size,
                **common,
            )
        )
        reserved = asset.size - asset.usable_size
        if reserved != Decimal("0"):
            batch.append(
                movement_model(
                    kind="RESERVE",
                    size_delta=Decimal("0"),
                    usable_delta=-reserved,
                    size_after=asset.size,
                    usable_after=asset.usable_size,
                    **common,
                )
            )
        if len(batch) >= BATCH:
            movement_model.objects.using(alias).bulk_create(batch)
            batch = []
    if batch:
        movement_model.objects.using(alias).bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ('assets', '0003_customer_replica_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='AssetMovement',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('customer_id', models.BigIntegerField()),
                ('asset_name', models.CharField(max_length=32)),
                ('kind', models.CharField(choices=[('DEPOSIT', 'Deposit'), ('WITHDRAWAL', 'Withdrawal'), ('RESERVE', 'Reserve'), ('RELEASE', 'Release'), ('SETTLE', 'Settle'), ('EXPIRE', 'Expire')], max_length=16)),
                ('size_delta', brokage.fields.ExactDecimalField(decimal_places=8, max_digits=24)),
                ('usable_delta', brokage.fields.ExactDecimalField(decimal_places=8, max_digits=24)),
                ('size_after', brokage.fields.ExactDecimalField(decimal_places=8, max_digits=24)),
                ('usable_after', brokage.fields.ExactDecimalField(decimal_places=8, max_digits=24)),
                ('order_id', models.UUIDField(blank=True, null=True)),
                ('reference', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('asset', models.ForeignKey(db_column='asset_id', db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='assets.asset')),
            ],
            options={
                'db_table': 'asset_movements',
                'ordering': ['-id'],
                'indexes': [models.Index(fields=['asset', 'id'], name='idx_movements_asset_id')],
            },
        ),
        migrations.RunPython(opening_movements, migrations.RunPython.noop),
    ]
