from brokage.commands import BrokageCommand, non_negative_float, non_negative_int
from processor.services import SAGA_MAX_RETRIES, SAGA_STUCK_AFTER_SECONDS, saga_retry_stuck


class Command(BrokageCommand):
    help = (
        "Re-send the last command of every order saga that has waited for a reply (in RESERVING, "
        "CANCEL_REQUESTED, RELEASING, COMPENSATING or SETTLING) longer than --older-than seconds. Each re-send counts "
        "as a retry; a saga past --max-retries is parked as STUCK for an admin (see the Sagas admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=non_negative_float,
            default=SAGA_STUCK_AFTER_SECONDS,
            help=f"Seconds without progress before a saga counts as stuck (default {SAGA_STUCK_AFTER_SECONDS:g}).",
        )
        parser.add_argument(
            "--max-retries",
            type=non_negative_int,
            default=SAGA_MAX_RETRIES,
            help=f"Re-sends before a saga is parked as STUCK (default {SAGA_MAX_RETRIES}).",
        )

    def handle(self, *args, older_than, max_retries, **options):
        result = saga_retry_stuck(older_than_seconds=older_than, max_retries=max_retries)
        for order_id in result.retried:
            self.stdout.write(f"re-sent the last command of order {order_id}")
        for order_id in result.parked:
            self.stdout.write(self.style.WARNING(f"order {order_id}: retries exhausted, saga is STUCK"))
        self.stdout.write(f"{len(result.retried)} re-sent, {len(result.parked)} parked as STUCK")
