"""The matching queue's size and price become ExactDecimalFields: unchanged numeric(38, 10) on
PostgreSQL; on SQLite, exact fixed-width text instead of floats (which kept 15 significant digits)."""

from django.db import migrations

import brokage.fields


def rewrite_on_sqlite(apps, schema_editor):
    brokage.fields.sqlite_decimal_columns_rewrite(
        schema_editor, "matching_queue", ["size", "price"], max_digits=38, decimal_places=10
    )


class Migration(migrations.Migration):
    dependencies = [
        ("processor", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="matchingqueueentry",
            name="price",
            field=brokage.fields.ExactDecimalField(decimal_places=10, max_digits=38),
        ),
        migrations.AlterField(
            model_name="matchingqueueentry",
            name="size",
            field=brokage.fields.ExactDecimalField(decimal_places=10, max_digits=38),
        ),
        migrations.RunPython(rewrite_on_sqlite, migrations.RunPython.noop),
    ]
