from assets.services import reservation_expire_stale
from brokage.commands import BrokageCommand, positive_int


class Command(BrokageCommand):
    help = (
        "Expire ACTIVE reservations past their expires_at: each becomes EXPIRED, its amount goes back "
        "to usable_size, and an AssetReleased event (saga_id null) tells the saga. Celery beat runs the "
        "same sweep every minute (task assets.expire_reservations); this runs it once, now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=positive_int, default=1000, help="At most this many reservations per run.")

    def handle(self, *args, limit, **options):
        expired = reservation_expire_stale(limit=limit)
        self.stdout.write(f"expired {expired} reservation(s)")
