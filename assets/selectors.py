"""Reads of the assets context: balances in a caller's scope, the ledger, the read models, the
balance invariant, and the streams the end-of-day reconciliation reads (`operations.reconcile`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import QuerySet

from assets.models import (
    Asset,
    AssetMovement,
    AssetReservation,
    BrokerAssignmentReplica,
    CustomerReplica,
    ReservationStatus,
)
from brokage import replicas
from brokage.auth import Principal, can_act_for, customer_scope
from brokage.db import read_snapshot, row_get
from brokage.errors import NotFound

ALIAS = "assets"


def asset_list(*, actor: Principal, customer_id: int | None = None, asset_name: str | None = None) -> QuerySet:
    """The balances `actor` may see (admin: all; broker: assigned customers; customer: own), filtered."""
    assets = Asset.objects.using(ALIAS).order_by("customer_id", "asset_name", "id")
    scope = customer_scope(actor, BrokerAssignmentReplica)
    if scope is not None:
        assets = assets.filter(customer_id__in=scope)
    if customer_id is not None:
        assets = assets.filter(customer_id=customer_id)
    if asset_name:
        assets = assets.filter(asset_name=asset_name)
    return assets


def asset_get_visible(*, actor: Principal, asset_id: int) -> Asset:
    """One balance `actor` may see (the scoping of `asset_list`); anything else is 404."""
    asset = row_get(Asset, ALIAS, id=asset_id) if 0 < asset_id < 2**63 else None
    if asset is None or not can_act_for(actor, asset.customer_id, BrokerAssignmentReplica):
        raise NotFound("Asset not found.")
    return asset


def asset_movement_list(*, actor: Principal, asset_id: int) -> QuerySet[AssetMovement]:
    """The ledger of one balance `actor` may see, newest first (served by (asset_id, id))."""
    asset = asset_get_visible(actor=actor, asset_id=asset_id)
    return AssetMovement.objects.using(ALIAS).filter(asset_id=asset.id).order_by("-id")


def asset_get(*, customer_id: int, asset_name: str) -> Asset | None:
    return row_get(Asset, ALIAS, customer_id=customer_id, asset_name=asset_name)


def reservation_get_for_order(*, order_id) -> AssetReservation | None:
    return row_get(AssetReservation, ALIAS, order_id=order_id)


def customer_wait_seconds() -> float:
    """How long a request waits for a customer created a moment ago: its CustomerCreated may still be
    on Kafka. The in-process bus delivers before the creating request returns, so there is no wait."""
    default = 2.0 if settings.EVENT_BUS == "kafka" else 0.0
    return float(getattr(settings, "ASSETS_CUSTOMER_WAIT_SECONDS", default))


def customer_replica_get(*, customer_id: int, wait_seconds: float = 0.0) -> CustomerReplica | None:
    """The customer as this context knows it, polling up to `wait_seconds` for it to arrive."""
    return replicas.customer_replica_get(CustomerReplica, customer_id=customer_id, wait_seconds=wait_seconds)


def asset_invariant_violations() -> list[dict]:
    """Rows breaking `size - usable_size == sum(ACTIVE reservations)` or `usable_size >= 0`; empty when sound.

    The sums are taken in Python: SQLite's SUM would add the exact decimals as floats."""
    reserved_by_asset: dict[int, Decimal] = defaultdict(Decimal)
    active = AssetReservation.objects.using(ALIAS).filter(status=ReservationStatus.ACTIVE)
    for asset_id, amount in active.values_list("asset_id", "amount").iterator():
        reserved_by_asset[asset_id] += amount
    violations = []
    for asset in Asset.objects.using(ALIAS).iterator():
        reserved = reserved_by_asset.get(asset.id, Decimal("0"))
        if asset.size - asset.usable_size != reserved or asset.usable_size < 0:
            violations.append(
                {
                    "asset_id": asset.id,
                    "customer_id": asset.customer_id,
                    "asset_name": asset.asset_name,
                    "size": asset.size,
                    "usable_size": asset.usable_size,
                    "active_reservations": reserved,
                }
            )
    return violations


# --- Streams for the end-of-day reconciliation (operations/reconcile.py) ------------------------------

STREAM_CHUNK_ROWS = 2000


class BalanceBooks(NamedTuple):
    """One balance beside what its ledger and its ACTIVE reservations say it should be."""

    asset_id: int
    customer_id: int
    asset_name: str
    size: Decimal
    usable_size: Decimal
    updated_at: datetime
    movements: int
    ledger_size: Decimal  # the sum of the movements' size deltas
    ledger_usable: Decimal
    last_size_after: Decimal | None  # the last movement's afters
    last_usable_after: Decimal | None
    broken_movement_id: int | None  # the first movement whose afters are not the running totals
    active_reserved: Decimal


def balance_books_iter(*, chunk_size: int = STREAM_CHUNK_ROWS) -> Iterator[BalanceBooks]:
    """Every balance with its ledger's running totals and its ACTIVE reservations, in asset id order.

    Three streams read in id order side by side (balances, movements by (asset_id, id), ACTIVE
    reservations by asset_id), a chunk at a time, in one snapshot of the database: memory stays
    flat however long the ledger, and no change lands between reading a balance and its ledger.
    Sums are taken in Python: SQLite's SUM would add the exact decimals as floats."""
    with read_snapshot(ALIAS):
        balances = (
            Asset.objects.using(ALIAS)
            .order_by("id")
            .values_list("id", "customer_id", "asset_name", "size", "usable_size", "updated_at")
            .iterator(chunk_size=chunk_size)
        )
        movements = (
            AssetMovement.objects.using(ALIAS)
            .order_by("asset_id", "id")
            .values_list("asset_id", "id", "size_delta", "usable_delta", "size_after", "usable_after")
            .iterator(chunk_size=chunk_size)
        )
        reservations = (
            AssetReservation.objects.using(ALIAS)
            .filter(status=ReservationStatus.ACTIVE)
            .order_by("asset_id")
            .values_list("asset_id", "amount")
            .iterator(chunk_size=chunk_size)
        )
        movement, reservation = next(movements, None), next(reservations, None)
        for asset_id, customer_id, asset_name, size, usable_size, updated_at in balances:
            count, ledger_size, ledger_usable, last, broken = 0, Decimal("0"), Decimal("0"), None, None
            while movement is not None and movement[0] <= asset_id:
                if movement[0] == asset_id:
                    _, movement_id, size_delta, usable_delta, size_after, usable_after = movement
                    count += 1
                    ledger_size += size_delta
                    ledger_usable += usable_delta
                    last = (size_after, usable_after)
                    if broken is None and last != (ledger_size, ledger_usable):
                        broken = movement_id
                movement = next(movements, None)
            reserved = Decimal("0")
            while reservation is not None and reservation[0] <= asset_id:
                if reservation[0] == asset_id:
                    reserved += reservation[1]
                reservation = next(reservations, None)
            yield BalanceBooks(
                asset_id=asset_id,
                customer_id=customer_id,
                asset_name=asset_name,
                size=size,
                usable_size=usable_size,
                updated_at=updated_at,
                movements=count,
                ledger_size=ledger_size,
                ledger_usable=ledger_usable,
                last_size_after=last[0] if last else None,
                last_usable_after=last[1] if last else None,
                broken_movement_id=broken,
                active_reserved=reserved,
            )


class ReservationBooks(NamedTuple):
    order_id: uuid.UUID
    reservation_id: uuid.UUID
    asset_id: int
    customer_id: int
    asset_name: str
    amount: Decimal
    status: str
    created_at: datetime


def reservation_iter_by_order(*, chunk_size: int = STREAM_CHUNK_ROWS) -> Iterator[ReservationBooks]:
    """Every reservation (one per order) with its balance's customer and asset, in order id order."""
    with read_snapshot(ALIAS):
        rows = (
            AssetReservation.objects.using(ALIAS)
            .order_by("order_id")
            .values_list(
                "order_id",
                "id",
                "asset_id",
                "asset__customer_id",
                "asset__asset_name",
                "amount",
                "status",
                "created_at",
            )
            .iterator(chunk_size=chunk_size)
        )
        for row in rows:
            yield ReservationBooks(*row)
