"""Balances and reservation amounts become ExactDecimalFields: unchanged numeric(24, 8) on
PostgreSQL; on SQLite, exact fixed-width text instead of floats (which kept 15 significant digits).

The CHECK constraints are taken off while SQLite rebuilds the table and its values are rewritten:
the rebuild copies the old floats as text such as "1000.0", which would compare as text."""

from decimal import Decimal

from django.db import migrations, models

import brokage.fields


def rewrite_on_sqlite(apps, schema_editor):
    for table, columns in (("assets", ["size", "usable_size"]), ("asset_reservations", ["amount"])):
        brokage.fields.sqlite_decimal_columns_rewrite(schema_editor, table, columns, max_digits=24, decimal_places=8)


class Migration(migrations.Migration):
    dependencies = [
        ("assets", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="asset", name="assets_usable_size_not_negative"),
        migrations.RemoveConstraint(model_name="asset", name="assets_usable_size_within_size"),
        migrations.AlterField(
            model_name="asset",
            name="size",
            field=brokage.fields.ExactDecimalField(decimal_places=8, default=Decimal("0"), max_digits=24),
        ),
        migrations.AlterField(
            model_name="asset",
            name="usable_size",
            field=brokage.fields.ExactDecimalField(decimal_places=8, default=Decimal("0"), max_digits=24),
        ),
        migrations.AlterField(
            model_name="assetreservation",
            name="amount",
            field=brokage.fields.ExactDecimalField(decimal_places=8, max_digits=24),
        ),
        migrations.RunPython(rewrite_on_sqlite, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="asset",
            constraint=models.CheckConstraint(condition=models.Q(usable_size__gte=0), name="assets_usable_size_not_negative"),
        ),
        migrations.AddConstraint(
            model_name="asset",
            constraint=models.CheckConstraint(
                condition=models.Q(usable_size__lte=models.F("size")), name="assets_usable_size_within_size"
            ),
        ),
    ]
