from brokage.commands import BrokageCommand, positive_int
from processor.services import reservation_ttl, saga_expire_stalled


class Command(BrokageCommand):
    help = (
        "Reject the orders whose saga never learned, within the reservation TTL "
        "(BROKAGE_RESERVATION_TTL_SECONDS), whether their balance was reserved: each order becomes "
        "REJECTED with reason RESERVATION_EXPIRED, and a reservation that lands afterwards is released. "
        "A confirmed order never expires: its reservation is held until it is matched or canceled. "
        "Celery beat runs the same sweep every minute (task processor.expire_reservations); this runs it once, now."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=positive_int, default=1000, help="At most this many sagas per run (default 1000)."
        )

    def handle(self, *args, limit, **options):
        expired = saga_expire_stalled(limit=limit)
        for order_id in expired:
            self.stdout.write(f"order {order_id}: not confirmed within {reservation_ttl()}, rejected")
        self.stdout.write(f"expired {len(expired)} saga(s)")
