import time

from brokage.commands import BrokageCommand, non_negative_float, positive_int, usage_error
from brokage.models import publishing_contexts
from brokage.relay import outbox_retry_failed, relay_drain


class Command(BrokageCommand):
    help = (
        "Drain one context's outbox onto the bus in the foreground, without Celery (for debugging "
        "and for running a relay as its own process). Prints what it published and what failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--context", required=True, help="orders, assets, processor or customers")
        parser.add_argument("--follow", action="store_true", help="Keep draining every --interval seconds.")
        parser.add_argument(
            "--interval", type=non_negative_float, default=0.5, help="Seconds between passes with --follow."
        )
        parser.add_argument(
            "--batch-size", type=positive_int, default=None, help="Rows per batch (default from settings)."
        )
        parser.add_argument("--retry-failed", action="store_true", help="Put FAILED rows back to PENDING first.")

    def handle(self, *args, context, follow, interval, batch_size, retry_failed, **options):
        if context not in publishing_contexts():
            raise usage_error(f"{context!r} has no outbox; choose one of {', '.join(publishing_contexts())}")
        if retry_failed:
            self.stdout.write(f"re-queued {outbox_retry_failed(context)} FAILED rows")
        while True:
            result = relay_drain(context, batch_size=batch_size)
            if result.published or result.failed_attempts or not follow:
                self.stdout.write(
                    f"{context}: published {result.published}, failed attempts {result.failed_attempts}, "
                    f"marked FAILED {result.marked_failed}"
                    + (f" (last error: {result.errors[-1]})" if result.errors else "")
                )
            if not follow:
                return
            time.sleep(interval)
