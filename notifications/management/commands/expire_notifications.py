from django.core.management.base import BaseCommand

from notifications.services import notifications_expired_delete


class Command(BaseCommand):
    help = (
        "Delete notifications past their expires_at (HIGH 365 days, NORMAL 90, LOW 30). A TTL index does "
        "this on MongoDB; FerretDB v1 has no TTL, so Celery beat runs this sweep hourly "
        "(task notifications.expire). This runs it once, now."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"deleted {notifications_expired_delete()} expired notification(s)")
