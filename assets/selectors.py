"""Reads of the assets context: balances in a caller's scope, the ledger, the read models, the
balance invariant, and the streams the end-of-day reconciliation reads (`operations.reconcile`)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

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
from brokage.db import row_get
from brokage.errors import NotFound

ALIAS = "assets"


def asset_list(*, principal: Principal, customer_id: int | None = None, asset_name: str | None = None) -> QuerySet:
    """The balances `principal` may see (admin: all; broker: assigned customers; customer: own), filtered."""
    assets = Asset.objects.using(ALIAS).order_by("customer_id", "asset_name", "id")
    scope = customer_scope(principal, BrokerAssignmentReplica)
    if scope is not None:
        assets = assets.filter(customer_id__in=scope)
    if customer_id is not None:
        assets = assets.filter(customer_id=customer_id)
    if asset_name:
        assets = assets.filter(asset_name=asset_name)
    return assets


def asset_get_visible(*, principal: Principal, asset_id: int) -> Asset:
    """One balance `principal` may see (the scoping of `asset_list`); anything else is 404."""
    asset = row_get(Asset, ALIAS, id=asset_id) if 0 < asset_id < 2**63 else None
    if asset is None or not can_act_for(principal, asset.customer_id, BrokerAssignmentReplica):
        raise NotFound("Asset not found.")
    return asset


def asset_movement_list(*, principal: Principal, asset_id: int) -> QuerySet[AssetMovement]:
    """The ledger of one balance `principal` may see, newest first (served by (asset_id, id))."""
    asset = asset_get_visible(principal=principal, asset_id=asset_id)
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
