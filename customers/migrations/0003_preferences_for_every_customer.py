from django.db import migrations


def create_missing_preferences(apps, schema_editor):
    """Every customer has a notification_preferences row; give one to customers made before that rule."""
    alias = schema_editor.connection.alias
    customer_model = apps.get_model("customers", "Customer")
    preference_model = apps.get_model("customers", "NotificationPreference")
    missing = customer_model.objects.using(alias).filter(notification_preferences__isnull=True)
    preference_model.objects.using(alias).bulk_create(
        [preference_model(customer_id=customer_id) for customer_id in missing.values_list("id", flat=True)]
    )


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_seed_tiers")]
    operations = [migrations.RunPython(create_missing_preferences, migrations.RunPython.noop)]
