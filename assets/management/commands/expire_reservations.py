from django.core.management.base import BaseCommand

from assets.services import reservation_expire_stale


class Command(BaseCommand):
    help = (
        "Expire ACTIVE reservations past their expires_at: each becomes EXPIRED, its amount goes back "
        "to usable_size, and an AssetReleased event (saga_id null) tells the saga. Celery beat runs the "
        "same sweep every minute (task assets.expire_reservations); this runs it once, now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=1000, help="At most this many reservations per run.")

    def handle(self, *args, limit, **options):
        expired = reservation_expire_stale(limit=limit)
        self.stdout.write(f"expired {expired} reservation(s)")
