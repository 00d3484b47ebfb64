from decimal import Decimal

from django.db import migrations

TIERS = [
    ("VIP", "VIP", 1, 1000, Decimal("99.00")),
    ("PREMIUM", "Premium", 2, 500, Decimal("29.00")),
    ("STANDARD", "Standard", 3, 100, Decimal("0.00")),
]


def seed_tiers(apps, schema_editor):
    tier_model = apps.get_model("customers", "CustomerTier")
    for code, name, priority, rate_limit, fee in TIERS:
        tier_model.objects.using(schema_editor.connection.alias).update_or_create(
            tier_code=code,
            defaults={"tier_name": name, "priority": priority, "rate_limit": rate_limit, "monthly_fee": fee},
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(seed_tiers, migrations.RunPython.noop)]
