from django.core.management.base import BaseCommand

from audit.services import audit_expired_delete


class Command(BaseCommand):
    help = (
        "Delete audit entries older than 365 days and telemetry older than 30. MongoDB expires them "
        "itself (time-series expiry, TTL indexes); FerretDB v1 cannot, so Celery beat runs this sweep "
        "hourly (task audit.expire). This runs it once, now."
    )

    def handle(self, *args, **options):
        deleted = audit_expired_delete()
        for collection, count in deleted.items():
            self.stdout.write(f"{collection}: deleted {count} expired document(s)")
