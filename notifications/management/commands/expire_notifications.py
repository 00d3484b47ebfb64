from brokage.commands import BrokageCommand
from notifications.services import notifications_expired_delete


class Command(BrokageCommand):
    help = (
        "Delete notifications past their expires_at (HIGH 365 days, NORMAL 90, LOW 30). A TTL index does "
        "this on MongoDB; FerretDB v1 has no TTL, so Celery beat runs this sweep hourly "
        "(task notifications.expire). This runs it once, now. The sweep finds notifications by the day "
        "they expire on (expires_on); --undated also deletes expired ones written before that field existed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--undated",
            action="store_true",
            help="also delete expired notifications that have no expires_on (on FerretDB this reads the whole "
            "collection: run it once after upgrading)",
        )

    def handle(self, *args, **options):
        deleted = notifications_expired_delete(undated=options["undated"])
        self.stdout.write(f"deleted {deleted} expired notification(s)")
