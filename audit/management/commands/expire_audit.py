from audit.services import audit_expired_delete
from brokage.commands import BrokageCommand


class Command(BrokageCommand):
    help = (
        "Delete audit entries older than 365 days and telemetry older than 30. MongoDB expires them "
        "itself (time-series expiry, TTL indexes); FerretDB v1 cannot, so Celery beat runs this sweep "
        "hourly (task audit.expire). This runs it once, now. The sweep finds documents by the day they "
        "expire on (expires_on); --undated also deletes expired ones written before that field existed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--undated",
            action="store_true",
            help="also delete expired documents that have no expires_on (on FerretDB this reads the whole "
            "collections: run it once after upgrading)",
        )

    def handle(self, *args, **options):
        deleted = audit_expired_delete(undated=options["undated"])
        for collection, count in deleted.items():
            self.stdout.write(f"{collection}: deleted {count} expired document(s)")
