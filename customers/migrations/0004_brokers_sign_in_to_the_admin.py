"""Brokers are employees: they sign in to the admin (scoped to their assigned customers)."""

from django.db import migrations


def brokers_are_staff(apps, schema_editor):
    customers = apps.get_model("customers", "Customer")
    customers.objects.using(schema_editor.connection.alias).filter(role="BROKER").update(is_staff=True)


def brokers_are_not_staff(apps, schema_editor):
    customers = apps.get_model("customers", "Customer")
    customers.objects.using(schema_editor.connection.alias).filter(role="BROKER").update(is_staff=False)


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_preferences_for_every_customer")]

    operations = [migrations.RunPython(brokers_are_staff, brokers_are_not_staff)]
