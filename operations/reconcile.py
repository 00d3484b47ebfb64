"""The end-of-day reconciliation: every context's own store read through its
selectors and compared with the others', every discrepancy named with its ids. It never repairs.

What it checks:

- balances: size and usable_size equal the ledger's running totals and its last movement's afters;
  size - usable_size equals the ACTIVE reservations; usable_size >= 0;
- orders (not ARCHIVED, and not changed within the grace window): the reservation the status calls
  for (`RESERVATION_FOR_STATUS`), of the right amount, and a saga state that agrees
  (`SAGA_STATES_FOR_STATUS`); no saga open past its deadline; no ACTIVE reservation without its order;
- outboxes: no FAILED row, no PENDING row older than a threshold;
- events: every event published in the window has its audit entry; no audit entry or notification
  exists twice for one event.

The order-shaped stores are read as streams sorted by order id and merge-joined, and the published
events likewise by event id, a chunk at a time: a day of traffic (10^5-10^6 orders) never sits in
memory. Balances are read in one snapshot of the assets database; across databases no snapshot
exists, so whatever changed within the grace window is left for the next run.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from django.db import router
from django.utils import timezone
from tqdm import tqdm

from assets.selectors import BalanceBooks, ReservationBooks, balance_books_iter, reservation_iter_by_order
from audit.selectors import audit_event_ids_iter
from brokage.models import OutboxStatus, outbox_model, publishing_contexts
from brokage.money import decimal_string
from notifications.selectors import notification_source_event_ids_iter
from orders.selectors import OrderBooks, order_iter_by_id
from processor.selectors import SagaBooks, saga_iter_by_order

QUOTE_ASSET = "TRY"
DEFAULT_SETTLE_SECONDS = 60.0
DEFAULT_OUTBOX_SECONDS = 300.0
DEFAULT_WINDOW = timedelta(hours=24)
# Audit entries are stamped with the event's time, a moment before its outbox row's: read a margin more.
AUDIT_MARGIN = timedelta(minutes=5)
# Findings listed in full; past this only counted (a broken import can produce millions).
MAX_LISTED = 10_000

# The saga states each order status agrees with. An order status missing here is not checked.
SAGA_STATES_FOR_STATUS: dict[str, frozenset[str]] = {
    "CREATED": frozenset({"RESERVING"}),
    "PENDING_RESERVATION": frozenset({"RESERVING"}),
    "ASSET_RESERVED": frozenset({"RESERVED", "CONFIRMED"}),
    "ORDER_CONFIRMED": frozenset({"CONFIRMED"}),
    "MATCHED": frozenset({"COMPLETED"}),
    "CANCELED": frozenset({"CANCELED", "RELEASED", "COMPENSATED", "FAILED", "EXPIRED"}),
    # FAILED: the reservation was refused; EXPIRED: never confirmed in time (a reservation that
    # landed afterwards was given back: COMPENSATED).
    "REJECTED": frozenset({"FAILED", "EXPIRED", "COMPENSATED"}),
}
# What the order's reservation must be: SETTLED, ACTIVE, or anything but ACTIVE (None: no rule).
ACTIVE, SETTLED, NOT_ACTIVE = "ACTIVE", "SETTLED", "NOT_ACTIVE"
RESERVATION_FOR_STATUS = {
    "ASSET_RESERVED": ACTIVE,
    "ORDER_CONFIRMED": ACTIVE,
    "MATCHED": SETTLED,
    "CANCELED": NOT_ACTIVE,
    "REJECTED": NOT_ACTIVE,
}


@dataclass(frozen=True)
class Discrepancy:
    check: str
    detail: str
    ids: dict

    def as_dict(self) -> dict:
        return {"check": self.check, "detail": self.detail, "ids": self.ids}

    def __str__(self) -> str:
        ids = " ".join(f"{name}={value}" for name, value in self.ids.items())
        return f"[{self.check}] {self.detail} ({ids})"


@dataclass
class ReconcileReport:
    started_at: datetime
    window: tuple[datetime, datetime]
    seconds: float = 0.0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    by_check: Counter = field(default_factory=Counter)

    @property
    def found(self) -> int:
        return self.counts["discrepancies"]

    @property
    def ok(self) -> bool:
        return self.found == 0

    def add(self, check: str, detail: str, **ids) -> None:
        self.counts["discrepancies"] += 1
        self.by_check[check] += 1
        if len(self.discrepancies) < MAX_LISTED:
            self.discrepancies.append(Discrepancy(check, detail, {k: _plain(v) for k, v in ids.items()}))

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "discrepancies": [d.as_dict() for d in self.discrepancies],
            "counts": dict(sorted(self.counts.items())),
            "by_check": dict(sorted(self.by_check.items())),
            "started_at": self.started_at.isoformat(),
            "window": {"since": self.window[0].isoformat(), "until": self.window[1].isoformat()},
            "seconds": round(self.seconds, 3),
        }


def _number(value: Decimal | None) -> str:
    """A decimal as a person writes it: 10, 12.5 (not 10.0000000000000000)."""
    if value is None:
        return "none"
    return decimal_string(value, trim=True)


def _plain(value):
    return value if value is None or isinstance(value, (int, str)) else str(value)


def reconcile(
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    outbox_seconds: float = DEFAULT_OUTBOX_SECONDS,
    since: datetime | None = None,
    now: datetime | None = None,
    progress: bool = False,
) -> ReconcileReport:
    """Run every check and return what it found (nothing is changed anywhere)."""
    started = time.monotonic()
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settle_seconds)
    report = ReconcileReport(started_at=now, window=(since or cutoff - DEFAULT_WINDOW, cutoff))

    def shown(rows: Iterable, what: str) -> Iterable:
        return tqdm(rows, desc=what, unit=" rows", disable=not progress, leave=False)

    for books in shown(balance_books_iter(), "balances"):
        _check_balance(books, report, cutoff)
    merged = _merge_by_order(
        shown(order_iter_by_id(), "orders"), saga_iter_by_order(now=now), reservation_iter_by_order()
    )
    for order, saga, reservation in merged:
        _check_order(order, saga, reservation, report, cutoff)
    _check_outboxes(report, now=now, outbox_seconds=outbox_seconds)
    _check_events(report, shown=shown)
    report.seconds = time.monotonic() - started
    return report


# --- Balances ----------------------------------------------------------------------------------------


def _check_balance(books: BalanceBooks, report: ReconcileReport, cutoff: datetime) -> None:
    report.counts["balances"] += 1
    if books.updated_at >= cutoff:
        report.counts["balances_skipped_recent"] += 1
        return
    ids = {"customer_id": books.customer_id, "asset_id": books.asset_id, "asset_name": books.asset_name}
    size, usable = books.size, books.usable_size
    if (size, usable) != (books.ledger_size, books.ledger_usable):
        report.add(
            "balance_ledger_total",
            f"{books.asset_name} balance is size {_number(size)} usable {_number(usable)}; its {books.movements} "
            f"movements add up to size {_number(books.ledger_size)} usable {_number(books.ledger_usable)}",
            **ids,
        )
    if books.movements and (size, usable) != (books.last_size_after, books.last_usable_after):
        report.add(
            "balance_ledger_last",
            f"{books.asset_name} balance is size {_number(size)} usable {_number(usable)}; its last movement "
            f"left size {_number(books.last_size_after)} usable {_number(books.last_usable_after)}",
            **ids,
        )
    if books.broken_movement_id is not None:
        report.add(
            "balance_ledger_chain",
            f"movement {books.broken_movement_id}'s afters are not the ledger's running totals",
            **ids,
            movement_id=books.broken_movement_id,
        )
    if size - usable != books.active_reserved:
        report.add(
            "balance_reserved",
            f"{books.asset_name} holds back {_number(size - usable)} (size {_number(size)} - usable "
            f"{_number(usable)}) but its ACTIVE reservations add up to {_number(books.active_reserved)}",
            **ids,
        )
    if usable < 0:
        report.add("balance_negative", f"{books.asset_name} usable balance is {_number(usable)}", **ids)


# --- Orders, their sagas and their reservations ---------------------------------------------------------


def _merge_by_order(
    orders: Iterable[OrderBooks], sagas: Iterable[SagaBooks], reservations: Iterable[ReservationBooks]
) -> Iterator[tuple[OrderBooks | None, SagaBooks | None, ReservationBooks | None]]:
    """Join three streams sorted by order id (each with at most one row per order) as they come."""
    streams = [iter(orders), iter(sagas), iter(reservations)]
    heads = [next(stream, None) for stream in streams]

    def key(row):
        return row.id if isinstance(row, OrderBooks) else row.order_id

    while any(head is not None for head in heads):
        smallest = min(key(head) for head in heads if head is not None)
        joined = []
        for position, head in enumerate(heads):
            if head is not None and key(head) == smallest:
                joined.append(head)
                heads[position] = next(streams[position], None)
            else:
                joined.append(None)
        yield tuple(joined)


def _amount_due(order: OrderBooks) -> tuple[str, Decimal]:
    """What the order's reservation holds: BUY size x price of TRY, SELL size of the asset (exactly)."""
    if order.order_side == "BUY":
        with localcontext() as context:
            context.prec = 200
            return QUOTE_ASSET, order.size * order.price
    return order.asset_name, order.size


def _check_order(
    order: OrderBooks | None,
    saga: SagaBooks | None,
    reservation: ReservationBooks | None,
    report: ReconcileReport,
    cutoff: datetime,
) -> None:
    if saga is not None:
        report.counts["sagas"] += 1
        if saga.overdue and saga.updated_at < cutoff:
            report.add(
                "saga_overdue",
                f"saga {saga.state} since {saga.updated_at.isoformat()} ({saga.retry_count} retries)",
                order_id=saga.order_id,
                saga_id=saga.saga_id,
                customer_id=order.customer_id if order else None,
            )
    if reservation is not None:
        report.counts["reservations"] += 1
    if order is None:
        if reservation is not None and reservation.status == ACTIVE and reservation.created_at < cutoff:
            report.add(
                "reservation_orphan",
                f"ACTIVE reservation of {_number(reservation.amount)} {reservation.asset_name} has no open order",
                order_id=reservation.order_id,
                customer_id=reservation.customer_id,
                asset_id=reservation.asset_id,
                reservation_id=reservation.reservation_id,
            )
        return
    report.counts["orders"] += 1
    recent = [order.updated_at, saga.updated_at if saga else None, reservation.created_at if reservation else None]
    if any(moment is not None and moment >= cutoff for moment in recent):
        report.counts["orders_skipped_recent"] += 1
        return
    ids = {"order_id": order.id, "customer_id": order.customer_id}
    if saga is not None:
        ids["saga_id"] = saga.saga_id
    if reservation is not None:
        ids.update(reservation_id=reservation.reservation_id, asset_id=reservation.asset_id)
    agreeing = SAGA_STATES_FOR_STATUS.get(order.status)
    if agreeing is not None and (saga is None or saga.state not in agreeing):
        report.add(
            "order_saga_state",
            f"order is {order.status} but its saga is {saga.state if saga else 'missing'} "
            f"(agrees: {', '.join(sorted(agreeing))})",
            **ids,
        )
    _check_reservation(order, reservation, report, ids)


def _check_reservation(order: OrderBooks, reservation: ReservationBooks | None, report, ids: dict) -> None:
    wanted = RESERVATION_FOR_STATUS.get(order.status)
    status = reservation.status if reservation else None
    if wanted == NOT_ACTIVE:
        if status == ACTIVE:
            report.add("order_reservation", f"order is {order.status} but its reservation is still ACTIVE", **ids)
        return
    if wanted is None:
        return
    if status != wanted:
        report.add(
            "order_reservation",
            f"order is {order.status} but its reservation is {status or 'missing'} (must be {wanted})",
            **ids,
        )
        return
    asset_name, amount = _amount_due(order)
    held = (reservation.customer_id, reservation.asset_name, reservation.amount)
    if held != (order.customer_id, asset_name, amount):
        report.add(
            "order_reservation_amount",
            f"{order.order_side} {_number(order.size)} {order.asset_name} @ {_number(order.price)} must hold "
            f"{_number(amount)} {asset_name} of customer {order.customer_id}; its reservation holds "
            f"{_number(reservation.amount)} {reservation.asset_name} of customer {reservation.customer_id}",
            **ids,
        )


# --- Outboxes and the events they published --------------------------------------------------------------


def _check_outboxes(report: ReconcileReport, *, now: datetime, outbox_seconds: float) -> None:
    stale = now - timedelta(seconds=outbox_seconds)
    for context in publishing_contexts():
        model = outbox_model(context)
        rows = model.objects.using(router.db_for_read(model))
        failed = rows.filter(status=OutboxStatus.FAILED).order_by("created_at")
        pending = rows.filter(status=OutboxStatus.PENDING, created_at__lt=stale).order_by("created_at")
        for check, found, why in (
            ("outbox_failed", failed, "FAILED after {retry_count} attempts"),
            ("outbox_pending", pending, "PENDING since {created_at}"),
        ):
            fields = ("id", "event_type", "aggregate_id", "created_at", "retry_count")
            for event_id, event_type, aggregate_id, created_at, retry_count in found.values_list(*fields).iterator():
                detail = why.format(retry_count=retry_count, created_at=created_at.isoformat())
                report.add(
                    check,
                    f"{context} outbox: {event_type} {detail}",
                    context=context,
                    event_id=event_id,
                    aggregate_id=aggregate_id,
                )


def _published(context: str, since: datetime, until: datetime) -> Iterator[tuple[str, str, str, str]]:
    """(event id, context, event type, aggregate id) of the events `context` published in the window, by id."""
    model = outbox_model(context)
    rows = (
        model.objects.using(router.db_for_read(model))
        .filter(status=OutboxStatus.PUBLISHED, created_at__gte=since, created_at__lt=until, published_at__lt=until)
        .order_by("id")
        .values_list("id", "event_type", "aggregate_id")
        .iterator(chunk_size=2000)
    )
    for event_id, event_type, aggregate_id in rows:
        yield str(event_id), context, event_type, aggregate_id


def _check_events(report: ReconcileReport, *, shown) -> None:
    since, until = report.window
    published = heapq.merge(*(_published(context, since, until) for context in publishing_contexts()))
    audited = audit_event_ids_iter(start=since - AUDIT_MARGIN, end=until + AUDIT_MARGIN)
    entry, previous = next(audited, None), None
    for event_id, context, event_type, aggregate_id in shown(published, "events"):
        report.counts["events"] += 1
        while entry is not None and entry < event_id:
            previous = _audit_entry_seen(entry, previous, report)
            entry = next(audited, None)
        if entry != event_id:
            report.add(
                "audit_missing",
                f"{event_type} published by {context} has no audit entry",
                event_id=event_id,
                context=context,
                aggregate_id=aggregate_id,
            )
    while entry is not None:
        previous = _audit_entry_seen(entry, previous, report)
        entry = next(audited, None)
    previous = None
    for event_id in notification_source_event_ids_iter(start=since, end=until):
        report.counts["notifications"] += 1
        if event_id == previous:
            report.add("notification_duplicate", "more than one notification for one event", event_id=event_id)
        previous = event_id


def _audit_entry_seen(entry: str, previous: str | None, report: ReconcileReport) -> str:
    report.counts["audit_entries"] += 1
    if entry == previous:
        report.add("audit_duplicate", "more than one audit entry for one event", event_id=entry)
    return entry
