import sys

from django.utils import timezone
from tqdm import tqdm

from brokage.commands import BrokageCommand, date_or_datetime, non_negative_int, positive_int
from orders.models import OrderStatus
from orders.services.archival import (
    ARCHIVE_AFTER_DAYS,
    DEFAULT_ARCHIVE_BATCH_SIZE,
    DEFAULT_ARCHIVE_RETENTION_DAYS,
    orders_archive,
    orders_archive_cutoffs,
    orders_archive_due_counts,
    orders_archived_delete,
)


class Command(BrokageCommand):
    help = (
        "Archive finished orders and delete long-archived ones (docs/operations.md). MATCHED and CANCELED "
        "orders last updated more than 90 days before --as-of, and REJECTED ones more than 30 days before, "
        "become ARCHIVED, each with an OrderStatusChanged event written to the orders outbox in the same "
        "transaction. ARCHIVED orders last updated more than --retention-days before --as-of are deleted. "
        "Open orders are never touched. Work is done in batches, one transaction each, so an interrupted "
        "run can simply be started again and continues where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=date_or_datetime,
            default=None,
            help="Reference date (YYYY-MM-DD or ISO date-time); ages are measured back from it. Default: now.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be archived/deleted.")
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=DEFAULT_ARCHIVE_BATCH_SIZE,
            help=f"Orders per transaction (default {DEFAULT_ARCHIVE_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--retention-days",
            type=non_negative_int,
            default=DEFAULT_ARCHIVE_RETENTION_DAYS,
            help=f"Delete ARCHIVED orders older than this many days (default {DEFAULT_ARCHIVE_RETENTION_DAYS}).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, as_of, dry_run, batch_size, retention_days, no_progress, **options):
        as_of = as_of or timezone.now()
        cutoffs = orders_archive_cutoffs(as_of=as_of, retention_days=retention_days)
        due = orders_archive_due_counts(cutoffs=cutoffs)
        archivable = {status: due[status] for status in ARCHIVE_AFTER_DAYS}
        to_delete = due[OrderStatus.ARCHIVED]
        if dry_run:
            self.stdout.write(self._summary("would archive", archivable, "would delete", to_delete, as_of))
            return

        bar = tqdm(
            total=sum(archivable.values()) + to_delete,
            desc="archive_orders",
            unit="order",
            file=sys.stderr,
            disable=True if no_progress else None,
        )
        deleted: dict[str, int] = {}
        archived: dict[str, int] = {}
        with bar:
            # Delete first, so orders archived by this very run are not counted against the retention.
            # A pass with nothing due is skipped: on a large table even finding nothing reads all of it.
            if to_delete:
                batches = orders_archived_delete(cutoff=cutoffs[OrderStatus.ARCHIVED], batch_size=batch_size)
                deleted = self._tally(batches, bar)
            if any(archivable.values()):
                archived = self._tally(orders_archive(cutoffs=cutoffs, batch_size=batch_size), bar)
        by_status = {status: archived.get(status, 0) for status in ARCHIVE_AFTER_DAYS}
        self.stdout.write(self._summary("archived", by_status, "deleted", deleted.get(OrderStatus.ARCHIVED, 0), as_of))

    @staticmethod
    def _tally(batches, bar) -> dict[str, int]:
        done: dict[str, int] = {}
        for batch in batches:
            for status, count in batch.counts.items():
                done[status] = done.get(status, 0) + count
            bar.update(batch.total)
        return done

    @staticmethod
    def _summary(archived_verb: str, archived: dict, deleted_verb: str, deleted: int, as_of) -> str:
        by_status = ", ".join(f"{status}={count}" for status, count in archived.items())
        return (
            f"as of {as_of.isoformat()}: {archived_verb} {sum(archived.values())} ({by_status}), "
            f"{deleted_verb} {deleted}"
        )
